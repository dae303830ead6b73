/**
 * The bulk service of the Write-chunk bench (bench/write_chunk.bench.ts): READ(count) answers
 * `count` bytes of 0x5a as a DDP-eligible result. The main-thread server takes `createCallHandler()`
 * directly; SvcRdmaThreadedServer loads this module in every worker thread.
 */
import { Dispatcher, defineProcedure } from '@roce-rpc/oncrpc';
import { xdrUint, xdrVariableOpaque } from '@roce-rpc/xdr';

export const BULK_PROGRAM = 0x2000_0104;
export const BULK_BYTES_MAX = 1024 * 1024;

export function createCallHandler(): Dispatcher {
  const payload = Buffer.alloc(BULK_BYTES_MAX, 0x5a);
  return new Dispatcher().addVersion(
    BULK_PROGRAM,
    { name: 'BULK', version: 1, procedures: [defineProcedure('READ', 1, xdrUint, xdrVariableOpaque(BULK_BYTES_MAX, true), { argument: false, result: true })] },
    { READ: (count: number) => payload.subarray(0, count) },
  );
}
