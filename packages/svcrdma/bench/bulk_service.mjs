/**
 * The bulk service of the Write-chunk bench (bench/write_chunk.bench.ts): READ(count) answers
 * `count` bytes of 0x5a as a DDP-eligible result. The main-thread server takes `createCallHandler()`
 * directly; SvcRdmaThreadedServer loads this module in every worker thread — hence JavaScript:
 * Node's type stripping of a .ts module crashed workers in the TCG guest (test/lab/thread_service.mjs).
 */
import { Dispatcher, defineProcedure } from '@roce-rpc/oncrpc';
import { xdrUint, xdrVariableOpaque } from '@roce-rpc/xdr';

export const BULK_PROGRAM = 0x2000_0104;
export const BULK_BYTES_MAX = 1024 * 1024;

/** @returns {Dispatcher} */
export function createCallHandler() {
  const payload = Buffer.alloc(BULK_BYTES_MAX, 0x5a);
  return new Dispatcher().addVersion(
    BULK_PROGRAM,
    { name: 'BULK', version: 1, procedures: [defineProcedure('READ', 1, xdrUint, xdrVariableOpaque(BULK_BYTES_MAX, true), { argument: false, result: true })] },
    { READ: (/** @type {number} */ count) => payload.subarray(0, count) },
  );
}
