/**
 * The NFSv4 NULL service of the benchmarks, as a service module for worker
 * threads (`serviceModule`): each worker builds its own Dispatcher.
 */
import { Dispatcher, defineProcedure } from '@roce-rpc/oncrpc';
import { xdrVoid } from '@roce-rpc/xdr';

export const NFS_PROGRAM = 100003;
export const NFS_V4 = 4;

export function createCallHandler(): Dispatcher {
  return new Dispatcher().addVersion(NFS_PROGRAM, { name: 'NFS4_NULL', version: NFS_V4, procedures: [defineProcedure('NULL', 0, xdrVoid, xdrVoid)] }, {});
}
