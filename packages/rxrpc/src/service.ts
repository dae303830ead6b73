/**
 * Services: what a server runs for its calls. A service module (loaded by
 * every channel worker) exports `services: RxService[]`; each incoming call
 * runs its service's `handle` on the worker thread that owns the call's
 * channel, so one channel's calls run strictly one after another.
 */
import { RxError } from './errors.js';
import type { CallStream } from './call/call-stream.js';
import { OPCODE_SIZE, RxErrorCode } from './protocol.js';
import { decodeOpcode } from './wire/codec.js';

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
  /**
   * Runs one call. Reject (or throw) with an error carrying `abortCode` to
   * ABORT the call with that code. Returns nothing when it finished the call
   * before returning: no promise to settle.
   */
  handle(call: CallStream, info: ServerCallInfo): Promise<void> | void;
}

/** A whole-message procedure: request arguments in, reply bytes out. */
export type SimpleProcedure = (args: Uint8Array, info: ServerCallInfo) => Promise<Uint8Array> | Uint8Array;
/** A split (streamed) procedure: reads the rest of the request and writes its reply itself. */
export interface SplitProcedure {
  split: (call: CallStream, info: ServerCallInfo) => Promise<void>;
}
export type Procedure = SimpleProcedure | SplitProcedure;

/**
 * The arguments of a request that is only its opcode. A small request is a
 * copy held in the V8 heap, and a view of its rest would first move it into
 * an ArrayBuffer of its own (a malloc per call, freed by the garbage collector).
 */
const NO_ARGUMENTS = new Uint8Array(0);

function unknownOpcode(opcode: number): RxError {
  return new RxError('ERR_RX_CALL_ABORTED', `opcode ${opcode} is not implemented`, RxErrorCode.RXGEN_OPCODE);
}

/**
 * A service in rxgen's calling convention: the request starts with an int32
 * opcode; unknown opcodes are aborted with RXGEN_OPCODE (-455).
 */
export function rxgenService(serviceId: number, name: string, procedures: ReadonlyMap<number, Procedure>): RxService {
  return {
    serviceId,
    name,
    handle(call, info) {
      const whole = call.takeWholeRequest();
      if (whole === undefined || whole.byteLength < OPCODE_SIZE) return handleStreamed(call, whole, procedures, info);
      // The request arrived whole before the handler ran: no stream reads, and a reply computed
      // at once is sent at once, with no promise at all (a small call's CPU and latency are
      // otherwise largely promise turns).
      const opcode = decodeOpcode(whole);
      const procedure = procedures.get(opcode);
      if (procedure === undefined) throw unknownOpcode(opcode);
      if (typeof procedure !== 'function') {
        call.unread(whole.subarray(OPCODE_SIZE));
        return procedure.split(call, info);
      }
      const reply = procedure(whole.byteLength === OPCODE_SIZE ? NO_ARGUMENTS : whole.subarray(OPCODE_SIZE), info);
      if (!(reply instanceof Uint8Array)) return reply.then((bytes) => endWith(call, bytes));
      return endWith(call, reply);
    },
  };
}

/** Sends `bytes` as the whole reply: at once when the call can take it, else once it can. */
function endWith(call: CallStream, bytes: Uint8Array): Promise<void> | undefined {
  return call.endAtOnce(bytes) ? undefined : call.end(bytes);
}

/** A request that had not arrived whole when its handler started: read as a stream. */
async function handleStreamed(call: CallStream, whole: Uint8Array | undefined, procedures: ReadonlyMap<number, Procedure>, info: ServerCallInfo): Promise<void> {
  if (whole !== undefined) call.unread(whole);
  const opcode = await call.readOpcode();
  const procedure = procedures.get(opcode);
  if (procedure === undefined) throw unknownOpcode(opcode);
  if (typeof procedure !== 'function') return procedure.split(call, info);
  const args = await call.readAll();
  await call.end(await procedure(args, info));
}

/** Imports a service module (a URL or path exporting `services: RxService[]`) on the calling thread. */
export async function loadServiceModule(serviceModule: string): Promise<RxService[]> {
  const module = (await import(serviceModule)) as { services?: RxService[] };
  if (!Array.isArray(module.services)) throw new RxError('ERR_RX_OPTION', `${serviceModule} exports no services array`);
  return module.services;
}
