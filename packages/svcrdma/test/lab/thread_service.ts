/**
 * The service the worker-thread lab tests load in every worker
 * (`serviceModule`): NULL; SLEEP(ms), which blocks its worker thread (a slow
 * procedure, not an await) and answers the thread's id; THREAD, the id of the
 * thread serving it; DIE, which ends its worker thread mid-RPC.
 */
import { threadId } from 'node:worker_threads';
import { Dispatcher, defineProcedure } from '@roce-rpc/oncrpc';
import { xdrUint, xdrVoid } from '@roce-rpc/xdr';

export const THREAD_PROGRAM = 0x2000_0131;
export const THREAD_VERSION = 1;
export const ThreadProcedure = { NULL: 0, SLEEP: 1, THREAD: 2, DIE: 3 } as const;

export function createCallHandler(): Dispatcher {
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
      ],
    },
    {
      SLEEP: (milliseconds: number) => {
        Atomics.wait(sleeper, 0, 0, milliseconds);
        return threadId;
      },
      THREAD: () => threadId,
      DIE: () => process.exit(3),
    },
  );
}
