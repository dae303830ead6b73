/**
 * The service the worker-thread lab tests load in every worker
 * (`serviceModule`): NULL; SLEEP(ms), which blocks its worker thread (a slow
 * procedure, not an await) and answers the thread's id; THREAD, the id of the
 * thread serving it; DIE, which ends its worker thread mid-RPC; LATER(ms),
 * which answers the thread's id through a promise settled after ms (an
 * asynchronous procedure: the worker awaits it, other RPCs do not).
 *
 * JavaScript, not TypeScript: every worker imports it, and Node strips a .ts
 * module's types with a WebAssembly module whose compiled code V8 shares
 * between the worker isolates; in the TCG guest, workers importing a .ts
 * module at once crashed in V8's wasm code GC (a worker ran code freed under
 * it: SIGSEGV, or "Check failed" in ReportLiveCodeFromStackForGC).
 */
import { threadId } from 'node:worker_threads';
import { Dispatcher, defineProcedure } from '@roce-rpc/oncrpc';
import { xdrUint, xdrVoid } from '@roce-rpc/xdr';

export const THREAD_PROGRAM = 0x2000_0131;
export const THREAD_VERSION = 1;
export const ThreadProcedure = Object.freeze({ NULL: 0, SLEEP: 1, THREAD: 2, DIE: 3, LATER: 4 });

/** @returns {Dispatcher} */
export function createCallHandler() {
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  return new Dispatcher().addVersion(
    THREAD_PROGRAM,
    {
      name: 'THREADTEST',
      version: THREAD_VERSION,
      procedures: [
        defineProcedure('NULL', ThreadProcedure.NULL, xdrVoid, xdrVoid),
        defineProcedure('SLEEP', ThreadProcedure.SLEEP, xdrUint, xdrUint),
        defineProcedure('THREAD', ThreadProcedure.THREAD, xdrVoid, xdrUint),
        defineProcedure('DIE', ThreadProcedure.DIE, xdrVoid, xdrVoid),
        defineProcedure('LATER', ThreadProcedure.LATER, xdrUint, xdrUint),
      ],
    },
    {
      SLEEP: (/** @type {number} */ milliseconds) => {
        Atomics.wait(sleeper, 0, 0, milliseconds);
        return threadId;
      },
      THREAD: () => threadId,
      DIE: () => process.exit(3),
      LATER: (/** @type {number} */ milliseconds) => new Promise((resolve) => setTimeout(() => resolve(threadId), milliseconds)),
    },
  );
}
