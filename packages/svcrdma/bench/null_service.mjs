/**
 * The NFSv4 NULL service of the benchmarks: the main-thread server takes
 * `createCallHandler()` directly; SvcRdmaThreadedServer loads this module in
 * every worker thread (`serviceModule`), each building its own Dispatcher —
 * hence JavaScript: Node's type stripping of a .ts module crashed workers in
 * the TCG guest (test/lab/thread_service.mjs).
 */
import { Dispatcher, defineProcedure } from '@roce-rpc/oncrpc';
import { xdrVoid } from '@roce-rpc/xdr';

export const NFS_PROGRAM = 100003;
export const NFS_V4 = 4;

/** @returns {Dispatcher} */
export function createCallHandler() {
  return new Dispatcher().addVersion(NFS_PROGRAM, { name: 'NFS4_NULL', version: NFS_V4, procedures: [defineProcedure('NULL', 0, xdrVoid, xdrVoid)] }, {});
}
