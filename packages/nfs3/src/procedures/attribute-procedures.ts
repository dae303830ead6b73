/**
 * GETATTR, SETATTR, ACCESS: procedures about one object's attributes.
 */
import type { RpcCall } from '@roce-rpc/oncrpc';
import { failedChangeConsistency, nanosecondsFromTime, weakCacheConsistencyOf } from '../attributes.js';
import { statusOf } from '../errors.js';
import { callerIdentity } from '../identity.js';
import * as nfs from '../protocol/nfs3.generated.js';
import type { ProcedureContext } from './context.js';

export function attributeProcedures(context: ProcedureContext) {
  const { store } = context;
  return {
    NFSPROC3_GETATTR: async (args: nfs.GETATTR3args): Promise<nfs.GETATTR3res> => {
      try {
        return { status: nfs.NFS3_OK, resok: { obj_attributes: await store.getAttributes(args.object.data) } };
      } catch (error) {
        return { status: statusOf(error) };
      }
    },

    NFSPROC3_SETATTR: async (args: nfs.SETATTR3args): Promise<nfs.SETATTR3res> => {
      try {
        if (args.guard.check) {
          const current = await store.getAttributes(args.object.data);
          if (nanosecondsFromTime(args.guard.obj_ctime) !== nanosecondsFromTime(current.ctime)) {
            return { status: nfs.NFS3ERR_NOT_SYNC, resfail: { obj_wcc: weakCacheConsistencyOf({ before: current, after: current }) } };
          }
        }
        return { status: nfs.NFS3_OK, resok: { obj_wcc: weakCacheConsistencyOf(await store.setAttributes(args.object.data, args.new_attributes)) } };
      } catch (error) {
        return { status: statusOf(error), resfail: { obj_wcc: await failedChangeConsistency(store, args.object.data) } };
      }
    },

    NFSPROC3_ACCESS: async (args: nfs.ACCESS3args, call: RpcCall): Promise<nfs.ACCESS3res> => {
      try {
        const attributes = await store.getAttributes(args.object.data);
        return { status: nfs.NFS3_OK, resok: { obj_attributes: { attributes_follow: true, attributes }, access: allowedAccess(attributes, args.access, call) } };
      } catch (error) {
        return { status: statusOf(error), resfail: { obj_attributes: { attributes_follow: false } } };
      }
    },
  };
}

/**
 * The access bits the caller's AUTH_SYS identity gets from the mode bits. Advisory, as RFC 1813
 * §3.3.4 allows: the server enforces nothing else (see README, limits); root gets everything
 * but execute on files without any x bit.
 */
function allowedAccess(attributes: nfs.fattr3, requested: number, call: RpcCall): number {
  const identity = callerIdentity(call);
  const uid = identity.uid;
  const gids = [identity.gid, ...identity.gids];
  const isDirectory = attributes.type === nfs.NF3DIR;
  let permissions: number;
  if (uid === 0) permissions = 0o7 & ~(isDirectory || (attributes.mode & 0o111) !== 0 ? 0 : 0o1);
  else if (uid === attributes.uid) permissions = (attributes.mode >> 6) & 0o7;
  else if (gids.includes(attributes.gid)) permissions = (attributes.mode >> 3) & 0o7;
  else permissions = attributes.mode & 0o7;
  let allowed = 0;
  if (permissions & 0o4) allowed |= nfs.ACCESS3_READ | (isDirectory ? nfs.ACCESS3_LOOKUP : 0);
  if (permissions & 0o2) allowed |= nfs.ACCESS3_MODIFY | nfs.ACCESS3_EXTEND | (isDirectory ? nfs.ACCESS3_DELETE : 0);
  if (permissions & 0o1) allowed |= isDirectory ? nfs.ACCESS3_LOOKUP : nfs.ACCESS3_EXECUTE;
  return allowed & requested;
}
