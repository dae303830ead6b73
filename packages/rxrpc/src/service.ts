/**
 * Services: what a server runs for its calls. A service module (loaded by
 * every channel worker) exports `services: RxService[]`; each incoming call
 * runs its service's `handle` on the worker thread that owns the call's
 * channel, so one channel's calls run strictly one after another.
 */
import { RxError } from './errors.js';
import type { CallStream } from './call/call-stream.js';
import { RxErrorCode } from './protocol.js';

export interface ServerCallInfo {
  serviceId: number;
  peerAddress: string;
  peerPort: number;
  epoch: number;
  cid: number;
  callNumber: number;
}

export interface RxService {
  serviceId: number;
  name: string;
  /** Runs one call. Reject with an error carrying `abortCode` to ABORT the call with that code. */
  handle(call: CallStream, info: ServerCallInfo): Promise<void>;
}

/** A whole-message procedure: request arguments in, reply bytes out. */
export type SimpleProcedure = (args: Uint8Array, info: ServerCallInfo) => Promise<Uint8Array> | Uint8Array;
/** A split (streamed) procedure: reads the rest of the request and writes its reply itself. */
export interface SplitProcedure {
  split: (call: CallStream, info: ServerCallInfo) => Promise<void>;
}
export type Procedure = SimpleProcedure | SplitProcedure;

/**
 * A service in rxgen's calling convention: the request starts with an int32
 * opcode; unknown opcodes are aborted with RXGEN_OPCODE (-455).
 */
export function rxgenService(serviceId: number, name: string, procedures: ReadonlyMap<number, Procedure>): RxService {
  return {
    serviceId,
    name,
    async handle(call, info) {
      const opcode = await call.readOpcode();
      const procedure = procedures.get(opcode);
      if (procedure === undefined) throw new RxError('ERR_RX_CALL_ABORTED', `opcode ${opcode} is not implemented`, RxErrorCode.RXGEN_OPCODE);
      if (typeof procedure !== 'function') return procedure.split(call, info);
      const args = await call.readAll();
      await call.end(await procedure(args, info));
    },
  };
}

/** Imports a service module (a URL or path exporting `services: RxService[]`) on the calling thread. */
export async function loadServiceModule(serviceModule: string): Promise<RxService[]> {
  const module = (await import(serviceModule)) as { services?: RxService[] };
  if (!Array.isArray(module.services)) throw new RxError('ERR_RX_OPTION', `${serviceModule} exports no services array`);
  return module.services;
}
