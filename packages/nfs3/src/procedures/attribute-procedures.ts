/**
 * GETATTR, SETATTR, ACCESS: procedures about one object's attributes.
 */
import type { RpcCall } from '@roce-rpc/oncrpc';
import { failedChangeConsistency, nanosecondsFromTime, weakCacheConsistencyOf } from '../attributes.js';
import { statusOf } from '../errors.js';
import { callerIdentity } from '../identity.js';
import * as nfs from '../protocol/nfs3.generated.js';
import type { Awaitable, NfsStore } from '../store/store.js';
import { answer } from './answer.js';
import type { ProcedureContext } from './context.js';

export function attributeProcedures(context: ProcedureContext) {
  const { store } = context;
  return {
    NFSPROC3_GETATTR: (args: nfs.GETATTR3args): Awaitable<nfs.GETATTR3res> =>
      answer(
        () => store.getAttributes(args.object.data),
        (attributes): nfs.GETATTR3res => ({ status: nfs.NFS3_OK, resok: { obj_attributes: attributes } }),
        (error): nfs.GETATTR3res => ({ status: statusOf(error) }),
      ),

    NFSPROC3_SETATTR: (args: nfs.SETATTR3args): Awaitable<nfs.SETATTR3res> => {
      if (args.guard.check) return guardedSetAttributes(store, args, args.guard.obj_ctime);
      return answer(
        () => store.setAttributes(args.object.data, args.new_attributes),
        (change): nfs.SETATTR3res => ({ status: nfs.NFS3_OK, resok: { obj_wcc: weakCacheConsistencyOf(change) } }),
        (error) => failedSetAttributes(store, args, error),
      );
    },

    NFSPROC3_ACCESS: (args: nfs.ACCESS3args, call: RpcCall): Awaitable<nfs.ACCESS3res> =>
      answer(
        () => store.getAttributes(args.object.data),
        (attributes): nfs.ACCESS3res => ({
          status: nfs.NFS3_OK,
          resok: { obj_attributes: { attributes_follow: true, attributes }, access: allowedAccess(attributes, args.access, call) },
        }),
        (error): nfs.ACCESS3res => ({ status: statusOf(error), resfail: { obj_attributes: { attributes_follow: false } } }),
      ),
  };
}

/** SETATTR with a ctime guard: the object's ctime must still be the client's. */
async function guardedSetAttributes(store: NfsStore, args: nfs.SETATTR3args, guardCtime: nfs.nfstime3): Promise<nfs.SETATTR3res> {
  try {
    const current = await store.getAttributes(args.object.data);
    if (nanosecondsFromTime(guardCtime) !== nanosecondsFromTime(current.ctime)) {
      return { status: nfs.NFS3ERR_NOT_SYNC, resfail: { obj_wcc: weakCacheConsistencyOf({ before: current, after: current }) } };
    }
    return { status: nfs.NFS3_OK, resok: { obj_wcc: weakCacheConsistencyOf(await store.setAttributes(args.object.data, args.new_attributes)) } };
  } catch (error) {
    return failedSetAttributes(store, args, error);
  }
}

async function failedSetAttributes(store: NfsStore, args: nfs.SETATTR3args, error: unknown): Promise<nfs.SETATTR3res> {
  return { status: statusOf(error), resfail: { obj_wcc: await failedChangeConsistency(store, args.object.data) } };
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
