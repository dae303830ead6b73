/**
 * READ, WRITE, COMMIT: file data. READ's result data and WRITE's argument data are the
 * DDP-eligible items (RFC 8267): the dispatcher keeps them by reference, so a READ buffer goes
 * to the transport uncopied and a WRITE's data is a view of the received call.
 */
import { failedChangeConsistency, postOpAttributes, postOpAttributesOf, weakCacheConsistencyOf } from '../attributes.js';
import { NfsStatusError, statusOf } from '../errors.js';
import * as nfs from '../protocol/nfs3.generated.js';
import type { Awaitable, NfsStore, WriteStability } from '../store/store.js';
import { answer } from './answer.js';
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

    NFSPROC3_WRITE: (args: nfs.WRITE3args): Awaitable<nfs.WRITE3res> => {
      // A short write is legal (§3.3.7): a client that exceeds wtmax gets wtmax bytes written.
      const data = args.data.subarray(0, context.maxTransferBytes);
      return answer(
        () => {
          if (args.count !== args.data.byteLength) throw new NfsStatusError(nfs.NFS3ERR_INVAL, `count ${args.count} differs from the ${args.data.byteLength} bytes sent`);
          if (args.offset + BigInt(data.byteLength) > BigInt(store.maxFileBytes)) throw new NfsStatusError(nfs.NFS3ERR_FBIG, 'write ends past the largest file');
          return store.write(args.file.data, Number(args.offset), data, stabilityOf[args.stable]);
        },
        (change): nfs.WRITE3res => ({ status: nfs.NFS3_OK, resok: { file_wcc: weakCacheConsistencyOf(change), count: data.byteLength, committed: args.stable, verf: context.writeVerifier } }),
        (error) => failedChange(store, args.file.data, error),
      );
    },

    NFSPROC3_COMMIT: (args: nfs.COMMIT3args): Awaitable<nfs.COMMIT3res> =>
      answer(
        () => {
          if (args.offset + BigInt(args.count) >= 2n ** 64n) throw new NfsStatusError(nfs.NFS3ERR_INVAL, 'offset + count overflows');
          return store.commit(args.file.data);
        },
        (change): nfs.COMMIT3res => ({ status: nfs.NFS3_OK, resok: { file_wcc: weakCacheConsistencyOf(change), verf: context.writeVerifier } }),
        (error) => failedChange(store, args.file.data, error),
      ),
  };
}

/** WRITE's and COMMIT's failure: the file's attributes now, none before. */
async function failedChange(store: NfsStore, file: Uint8Array, error: unknown): Promise<{ status: Exclude<nfs.nfsstat3, 0>; resfail: { file_wcc: nfs.wcc_data } }> {
  return { status: statusOf(error), resfail: { file_wcc: await failedChangeConsistency(store, file) } };
}
