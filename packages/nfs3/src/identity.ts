/**
 * Who is calling: the AUTH_SYS uid/gid/gids of an RPC call, or nobody for AUTH_NONE. Used for
 * ACCESS answers and as the owner of objects a call creates.
 */
import type { RpcCall } from '@roce-rpc/oncrpc';

export interface CallerIdentity {
  uid: number;
  gid: number;
  gids: readonly number[];
}

/** The conventional nobody/nogroup of Linux. */
export const nobody = 65534;

export function callerIdentity(call: RpcCall): CallerIdentity {
  const credential = call.credential;
  if ('sys' in credential) return { uid: credential.sys.uid, gid: credential.sys.gid, gids: credential.sys.gids };
  return { uid: nobody, gid: nobody, gids: [] };
}
