/**
 * FSSTAT, FSINFO, PATHCONF: procedures about the file system as a whole. FSINFO's rtmax/wtmax
 * are the service's transfer limit, which READ and WRITE enforce (data-procedures.ts).
 */
import { postOpAttributesOf } from '../attributes.js';
import { statusOf } from '../errors.js';
import { nameBytesMax } from '../names.js';
import * as nfs from '../protocol/nfs3.generated.js';
import type { ProcedureContext } from './context.js';

export function fileSystemProcedures(context: ProcedureContext) {
  const { store } = context;
  return {
    NFSPROC3_FSSTAT: async (args: nfs.FSSTAT3args): Promise<nfs.FSSTAT3res> => {
      try {
        const attributes = await store.getAttributes(args.fsroot.data);
        const statistics = await store.statistics();
        return {
          status: nfs.NFS3_OK,
          resok: {
            obj_attributes: { attributes_follow: true, attributes }, tbytes: statistics.totalBytes, fbytes: statistics.freeBytes,
            abytes: statistics.availableBytes, tfiles: statistics.totalFiles, ffiles: statistics.freeFiles, afiles: statistics.availableFiles, invarsec: 0,
          },
        };
      } catch (error) {
        return { status: statusOf(error), resfail: { obj_attributes: { attributes_follow: false } } };
      }
    },

    NFSPROC3_FSINFO: async (args: nfs.FSINFO3args): Promise<nfs.FSINFO3res> => {
      try {
        const attributes = await store.getAttributes(args.fsroot.data);
        const transfer = context.maxTransferBytes;
        return {
          status: nfs.NFS3_OK,
          resok: {
            obj_attributes: { attributes_follow: true, attributes }, rtmax: transfer, rtpref: transfer, rtmult: 4096,
            wtmax: transfer, wtpref: transfer, wtmult: 4096, dtpref: 64 * 1024, maxfilesize: BigInt(store.maxFileBytes),
            time_delta: { seconds: 0, nseconds: 1 }, properties: nfs.FSF3_LINK | nfs.FSF3_SYMLINK | nfs.FSF3_HOMOGENEOUS | nfs.FSF3_CANSETTIME,
          },
        };
      } catch (error) {
        return { status: statusOf(error), resfail: { obj_attributes: { attributes_follow: false } } };
      }
    },

    NFSPROC3_PATHCONF: async (args: nfs.PATHCONF3args): Promise<nfs.PATHCONF3res> => {
      try {
        const attributes = await store.getAttributes(args.object.data);
        return {
          status: nfs.NFS3_OK,
          resok: {
            obj_attributes: { attributes_follow: true, attributes }, linkmax: 32_000, name_max: nameBytesMax,
            no_trunc: true, chown_restricted: true, case_insensitive: false, case_preserving: true,
          },
        };
      } catch (error) {
        return { status: statusOf(error), resfail: { obj_attributes: await postOpAttributesOf(store, args.object.data) } };
      }
    },
  };
}
