/**
 * READ, WRITE, COMMIT: file data. READ's result data and WRITE's argument data are the
 * DDP-eligible items (RFC 8267): the dispatcher keeps them by reference, so a READ buffer goes
 * to the transport uncopied and a WRITE's data is a view of the received call.
 */
import { failedChangeConsistency, postOpAttributes, postOpAttributesOf, weakCacheConsistencyOf } from '../attributes.js';
import { NfsStatusError, statusOf } from '../errors.js';
import * as nfs from '../protocol/nfs3.generated.js';
import type { WriteStability } from '../store/store.js';
import type { ProcedureContext } from './context.js';

/** Offsets at or past 2^63 are negative as the host's off_t: no file reaches them. */
const offsetLimit = 2n ** 63n;

const stabilityOf: Record<nfs.stable_how, WriteStability> = { [nfs.UNSTABLE]: 'unstable', [nfs.DATA_SYNC]: 'data', [nfs.FILE_SYNC]: 'file' };

export function dataProcedures(context: ProcedureContext) {
  const { store } = context;
  return {
    NFSPROC3_READ: async (args: nfs.READ3args): Promise<nfs.READ3res> => {
      try {
        if (args.offset >= offsetLimit) throw new NfsStatusError(nfs.NFS3ERR_INVAL, 'offset past 2^63');
        // Past the largest file there is nothing to read: an empty reply at end of file.
        const offset = args.offset > BigInt(store.maxFileBytes) ? store.maxFileBytes : Number(args.offset);
        const count = Math.min(args.count, context.maxTransferBytes); // RFC 1813 §3.3.6: may return less
        const { data, eof, attributes } = await store.read(args.file.data, offset, count);
        return { status: nfs.NFS3_OK, resok: { file_attributes: postOpAttributes(attributes), count: data.length, eof, data } };
      } catch (error) {
        return { status: statusOf(error), resfail: { file_attributes: await postOpAttributesOf(store, args.file.data) } };
      }
    },

    NFSPROC3_WRITE: async (args: nfs.WRITE3args): Promise<nfs.WRITE3res> => {
      try {
        if (args.count !== args.data.byteLength) throw new NfsStatusError(nfs.NFS3ERR_INVAL, `count ${args.count} differs from the ${args.data.byteLength} bytes sent`);
        // A short write is legal (§3.3.7): a client that exceeds wtmax gets wtmax bytes written.
        const data = args.data.subarray(0, context.maxTransferBytes);
        if (args.offset + BigInt(data.byteLength) > BigInt(store.maxFileBytes)) throw new NfsStatusError(nfs.NFS3ERR_FBIG, 'write ends past the largest file');
        const change = await store.write(args.file.data, Number(args.offset), data, stabilityOf[args.stable]);
        return { status: nfs.NFS3_OK, resok: { file_wcc: weakCacheConsistencyOf(change), count: data.byteLength, committed: args.stable, verf: context.writeVerifier } };
      } catch (error) {
        return { status: statusOf(error), resfail: { file_wcc: await failedChangeConsistency(store, args.file.data) } };
      }
    },

    NFSPROC3_COMMIT: async (args: nfs.COMMIT3args): Promise<nfs.COMMIT3res> => {
      try {
        if (args.offset + BigInt(args.count) >= 2n ** 64n) throw new NfsStatusError(nfs.NFS3ERR_INVAL, 'offset + count overflows');
        return { status: nfs.NFS3_OK, resok: { file_wcc: weakCacheConsistencyOf(await store.commit(args.file.data)), verf: context.writeVerifier } };
      } catch (error) {
        return { status: statusOf(error), resfail: { file_wcc: await failedChangeConsistency(store, args.file.data) } };
      }
    },
  };
}
