/**
 * LOOKUP, READLINK, CREATE, MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR, RENAME, LINK: procedures
 * that read or change names in directories. Each answers the directory's weak cache
 * consistency data (attributes before and after) whether it succeeds or fails.
 */
import type { RpcCall } from '@roce-rpc/oncrpc';
import { callerIdentity } from '../identity.js';
import { attributesOrNull, failedChangeConsistency, postOpAttributes, postOpAttributesOf, weakCacheConsistency, weakCacheConsistencyOf } from '../attributes.js';
import { statusOf } from '../errors.js';
import * as nfs from '../protocol/nfs3.generated.js';
import type { Awaitable, CreateRequest, NfsStore } from '../store/store.js';
import { answer } from './answer.js';
import type { ProcedureContext } from './context.js';

interface CreatedResult {
  obj: nfs.post_op_fh3;
  obj_attributes: nfs.post_op_attr;
  dir_wcc: nfs.wcc_data;
}

type CreationResult = { status: 0; resok: CreatedResult } | { status: Exclude<nfs.nfsstat3, 0>; resfail: { dir_wcc: nfs.wcc_data } };

/** The shared body of CREATE, MKDIR and SYMLINK. */
function createObject(store: NfsStore, where: nfs.diropargs3, request: CreateRequest, call: RpcCall): Awaitable<CreationResult> {
  return answer(
    () => store.create(where.dir.data, where.name, request, callerIdentity(call)),
    ({ object, directory }): CreationResult => ({
      status: nfs.NFS3_OK,
      resok: {
        obj: { handle_follows: true, handle: { data: object.handle } },
        obj_attributes: postOpAttributes(object.attributes),
        dir_wcc: weakCacheConsistencyOf(directory),
      },
    }),
    async (error): Promise<CreationResult> => ({ status: statusOf(error), resfail: { dir_wcc: await failedChangeConsistency(store, where.dir.data) } }),
  );
}

/** The shared body of REMOVE and RMDIR. */
function removeName(store: NfsStore, object: nfs.diropargs3, removeDirectory: boolean): Awaitable<nfs.REMOVE3res> {
  return answer(
    () => (removeDirectory ? store.removeDirectory(object.dir.data, object.name) : store.remove(object.dir.data, object.name)),
    (change): nfs.REMOVE3res => ({ status: nfs.NFS3_OK, resok: { dir_wcc: weakCacheConsistencyOf(change) } }),
    async (error): Promise<nfs.REMOVE3res> => ({ status: statusOf(error), resfail: { dir_wcc: await failedChangeConsistency(store, object.dir.data) } }),
  );
}

function createRequest(how: nfs.createhow3): CreateRequest {
  if (how.mode === nfs.EXCLUSIVE) return { kind: 'file', mode: 'exclusive', verifier: Buffer.from(how.verf) };
  return { kind: 'file', mode: how.mode === nfs.GUARDED ? 'guarded' : 'unchecked', attributes: how.obj_attributes };
}

export function namespaceProcedures(context: ProcedureContext) {
  const { store } = context;
  return {
    NFSPROC3_LOOKUP: (args: nfs.LOOKUP3args): Awaitable<nfs.LOOKUP3res> =>
      answer(
        () => store.lookup(args.what.dir.data, args.what.name),
        ({ object, directory }): nfs.LOOKUP3res => {
          if (object === null) return { status: nfs.NFS3ERR_NOENT, resfail: { dir_attributes: postOpAttributes(directory) } };
          return {
            status: nfs.NFS3_OK,
            resok: { object: { data: object.handle }, obj_attributes: postOpAttributes(object.attributes), dir_attributes: postOpAttributes(directory) },
          };
        },
        async (error): Promise<nfs.LOOKUP3res> => ({ status: statusOf(error), resfail: { dir_attributes: await postOpAttributesOf(store, args.what.dir.data) } }),
      ),

    NFSPROC3_READLINK: async (args: nfs.READLINK3args): Promise<nfs.READLINK3res> => {
      try {
        const data = await store.readLink(args.symlink.data);
        return { status: nfs.NFS3_OK, resok: { symlink_attributes: await postOpAttributesOf(store, args.symlink.data), data } };
      } catch (error) {
        return { status: statusOf(error), resfail: { symlink_attributes: await postOpAttributesOf(store, args.symlink.data) } };
      }
    },

    NFSPROC3_CREATE: (args: nfs.CREATE3args, call: RpcCall): Awaitable<nfs.CREATE3res> => createObject(store, args.where, createRequest(args.how), call),

    NFSPROC3_MKDIR: (args: nfs.MKDIR3args, call: RpcCall): Awaitable<nfs.MKDIR3res> => createObject(store, args.where, { kind: 'directory', attributes: args.attributes }, call),

    NFSPROC3_SYMLINK: (args: nfs.SYMLINK3args, call: RpcCall): Awaitable<nfs.SYMLINK3res> =>
      createObject(store, args.where, { kind: 'symlink', attributes: args.symlink.symlink_attributes, target: args.symlink.symlink_data }, call),

    // Devices, sockets and FIFOs are not served: an export of plain files needs none.
    NFSPROC3_MKNOD: async (args: nfs.MKNOD3args): Promise<nfs.MKNOD3res> => {
      const attributes = await attributesOrNull(store, args.where.dir.data);
      const dir_wcc = { before: { attributes_follow: false as const }, after: postOpAttributes(attributes) };
      return { status: nfs.NFS3ERR_NOTSUPP, resfail: { dir_wcc } };
    },

    NFSPROC3_REMOVE: (args: nfs.REMOVE3args): Awaitable<nfs.REMOVE3res> => removeName(store, args.object, false),

    NFSPROC3_RMDIR: (args: nfs.RMDIR3args): Awaitable<nfs.RMDIR3res> => removeName(store, args.object, true),

    NFSPROC3_RENAME: async (args: nfs.RENAME3args): Promise<nfs.RENAME3res> => {
      const fromBefore = await attributesOrNull(store, args.from.dir.data);
      const toBefore = await attributesOrNull(store, args.to.dir.data);
      let status: nfs.nfsstat3 = nfs.NFS3_OK;
      try {
        await store.rename(args.from.dir.data, args.from.name, args.to.dir.data, args.to.name);
      } catch (error) {
        status = statusOf(error);
      }
      const fromdir_wcc = await weakCacheConsistency(store, args.from.dir.data, fromBefore);
      const todir_wcc = await weakCacheConsistency(store, args.to.dir.data, toBefore);
      return status === nfs.NFS3_OK ? { status, resok: { fromdir_wcc, todir_wcc } } : { status, resfail: { fromdir_wcc, todir_wcc } };
    },

    NFSPROC3_LINK: async (args: nfs.LINK3args): Promise<nfs.LINK3res> => {
      const before = await attributesOrNull(store, args.link.dir.data);
      let status: nfs.nfsstat3 = nfs.NFS3_OK;
      try {
        await store.link(args.file.data, args.link.dir.data, args.link.name);
      } catch (error) {
        status = statusOf(error);
      }
      const file_attributes = await postOpAttributesOf(store, args.file.data);
      const linkdir_wcc = await weakCacheConsistency(store, args.link.dir.data, before);
      return status === nfs.NFS3_OK ? { status, resok: { file_attributes, linkdir_wcc } } : { status, resfail: { file_attributes, linkdir_wcc } };
    },
  };
}
