/**
 * The service the drain-point lab tests load in their worker (`serviceModule`):
 * NULL; GATE(n), which blocks its worker thread until the test opens gate n
 * and answers n; GATE_ONEWAY(n), the same without a reply (as a batched Sun
 * RPC call, whose server never calls svc_sendreply): the RPC ends with the
 * release and no send context is taken. The gate is a SharedArrayBuffer the
 * test passes as `serviceOptions.gate` (shared, not copied, with the worker),
 * so the test decides when a worker reaches its next send-context get or its
 * next release — after the Send it waits for has completed.
 *
 * JavaScript, not TypeScript: see thread_service.mjs.
 */
import { Dispatcher, defineProcedure } from '@roce-rpc/oncrpc';
import { xdrUint, xdrVoid } from '@roce-rpc/xdr';

export const DRAIN_PROGRAM = 0x2000_0132;
export const DRAIN_VERSION = 1;
export const DrainProcedure = Object.freeze({ NULL: 0, GATE: 1, GATE_ONEWAY: 2 });
/** A gate the test never opens fails its call instead of holding the worker forever. */
const GATE_WAIT_MAX_MS = 30_000;

/**
 * @param {{ gate: SharedArrayBuffer }} options
 * @returns {import('../../dist/index.js').CallHandler}
 */
export function createCallHandler(options) {
  const gate = new Int32Array(options.gate);
  /** @param {number} number */
  const passGate = (number) => {
    const deadline = performance.now() + GATE_WAIT_MAX_MS;
    for (let opened = Atomics.load(gate, 0); opened < number; opened = Atomics.load(gate, 0)) {
      const remaining = deadline - performance.now();
      if (remaining <= 0) throw new Error(`gate ${number} not opened within ${GATE_WAIT_MAX_MS} ms (opened: ${opened})`);
      Atomics.wait(gate, 0, opened, remaining);
    }
    return number;
  };
  const dispatcher = new Dispatcher().addVersion(
    DRAIN_PROGRAM,
    {
      name: 'DRAINTEST',
      version: DRAIN_VERSION,
      procedures: [
        defineProcedure('NULL', DrainProcedure.NULL, xdrVoid, xdrVoid),
        defineProcedure('GATE', DrainProcedure.GATE, xdrUint, xdrUint),
        defineProcedure('GATE_ONEWAY', DrainProcedure.GATE_ONEWAY, xdrUint, xdrUint),
      ],
    },
    { GATE: passGate, GATE_ONEWAY: passGate },
  );
  return {
    handleCall(bytes, context, dispatchOptions) {
      const reply = dispatcher.handleCall(bytes, context, dispatchOptions);
      if (reply instanceof Promise) throw new Error('the drain service answers synchronously');
      return reply?.procedure?.name === 'GATE_ONEWAY' ? null : reply;
    },
  };
}
