/**
 * The service the chunk lab tests load in every worker (`serviceModule`):
 * READ(count) answers `count` pattern bytes as a DDP-eligible result (a Write
 * chunk); CHECK(opaque) takes a DDP-eligible argument (a Read chunk) and
 * answers its length if every byte is the pattern's, else 0; BIG(count)
 * answers `count` pattern bytes inline in the reply (a Reply chunk when long);
 * THREAD answers the id of the thread serving it.
 *
 * JavaScript, not TypeScript: every worker imports it, and Node's type
 * stripping (a WebAssembly module whose code V8 shares between worker
 * isolates) crashed workers in the TCG guest (see thread_service.mjs).
 */
import { threadId } from 'node:worker_threads';
import { Dispatcher, defineProcedure } from '@roce-rpc/oncrpc';
import { xdrUint, xdrVariableOpaque, xdrVoid } from '@roce-rpc/xdr';

export const CHUNK_PROGRAM = 0x2000_0132;
export const CHUNK_VERSION = 1;
export const ChunkProcedure = Object.freeze({ NULL: 0, READ: 1, CHECK: 2, BIG: 3, THREAD: 4 });
const OPAQUE_MAX = 1 << 20;

/**
 * The bytes every test compares against: not zeros, not periodic in 4 KiB pages.
 * @param {number} count
 * @returns {Buffer}
 */
export function pattern(count) {
  const data = Buffer.alloc(count);
  for (let index = 0; index < count; index++) data[index] = (index * 31 + (index >>> 12) + 7) & 0xff;
  return data;
}

/** @returns {Dispatcher} */
export function createCallHandler() {
  return new Dispatcher().addVersion(
    CHUNK_PROGRAM,
    {
      name: 'CHUNKTEST',
      version: CHUNK_VERSION,
      procedures: [
        defineProcedure('NULL', ChunkProcedure.NULL, xdrVoid, xdrVoid),
        defineProcedure('READ', ChunkProcedure.READ, xdrUint, xdrVariableOpaque(OPAQUE_MAX, true), { argument: false, result: true }),
        defineProcedure('CHECK', ChunkProcedure.CHECK, xdrVariableOpaque(OPAQUE_MAX, true), xdrUint, { argument: true, result: false }),
        defineProcedure('BIG', ChunkProcedure.BIG, xdrUint, xdrVariableOpaque(OPAQUE_MAX)),
        defineProcedure('THREAD', ChunkProcedure.THREAD, xdrVoid, xdrUint),
      ],
    },
    {
      READ: (/** @type {number} */ count) => pattern(count),
      CHECK: (/** @type {Uint8Array} */ data) => (Buffer.from(data.buffer, data.byteOffset, data.byteLength).equals(pattern(data.length)) ? data.length : 0),
      BIG: (/** @type {number} */ count) => pattern(count),
      THREAD: () => threadId,
    },
  );
}
