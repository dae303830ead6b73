/**
 * Typed procedure calls from xdrgen's rxgen descriptor tables
 * (@roce-rpc/xdr): the client side (invoke, split calls) and the server
 * side (a service built from a package descriptor and an implementation
 * object keyed by procedure name).
 *
 * Wire convention (rxgen): int32 opcode, then the XDR of the IN/INOUT
 * parameters; the reply is the XDR of the OUT/INOUT parameters. A split
 * procedure streams raw bytes between the arguments and the results.
 */
import {
  XdrError,
  XdrErrorCode,
  XdrReader,
  XdrWriter,
  decodeWhole,
  type RxPackageDescriptor,
  type RxProcedureDescriptor,
  type XdrCodec,
} from '@roce-rpc/xdr';
import { CallStream, concat } from './call/call-stream.js';
import { RxError } from './errors.js';
import { RxErrorCode } from './protocol.js';
import { rxgenService, type Procedure, type RxService, type ServerCallInfo } from './service.js';
import { encodeOpcode } from './wire/codec.js';

/** Arguments of one call are at most this large when read before a split stream (hostile peers). */
const SPLIT_ARGUMENTS_BYTES_MAX = 64 * 1024;

export function encodeValue<T>(codec: XdrCodec<T>, value: T): Uint8Array[] {
  const writer = new XdrWriter();
  codec.encode(writer, value);
  return writer.finish().toChunks();
}

export function decodeValue<T>(codec: XdrCodec<T>, bytes: Uint8Array, abortCode: number): T {
  try {
    return decodeWhole(codec, new XdrReader(bytes));
  } catch (error) {
    if (error instanceof XdrError) throw new RxError('ERR_RX_BAD_PACKET', `${codec.name}: ${error.message}`, abortCode);
    throw error;
  }
}

export function encodeRequest<A>(descriptor: RxProcedureDescriptor<A, unknown>, args: A): Uint8Array {
  return concat([encodeOpcode(descriptor.opcode), ...encodeValue(descriptor.argument, args)]);
}

/**
 * A client's split call: after the arguments, write() streams raw bytes to
 * the server and read() streams raw bytes from it; finish() ends the request
 * (if not yet) and decodes the results from the rest of the reply.
 */
export class SplitCall<R> {
  readonly stream: CallStream;
  private readonly descriptor: RxProcedureDescriptor<unknown, R>;
  private requestEnded = false;

  constructor(stream: CallStream, descriptor: RxProcedureDescriptor<unknown, R>) {
    this.stream = stream;
    this.descriptor = descriptor;
  }

  write(data: Uint8Array): Promise<void> {
    return this.stream.write(data);
  }

  private async endRequest(): Promise<void> {
    if (this.requestEnded) return;
    this.requestEnded = true;
    await this.stream.end();
  }

  async read(): Promise<Uint8Array | undefined> {
    await this.endRequest();
    return this.stream.read();
  }

  async readExactly(length: number): Promise<Uint8Array> {
    await this.endRequest();
    return this.stream.readExactly(length);
  }

  async finish(maxReplyBytes?: number): Promise<R> {
    await this.endRequest();
    const rest = await this.stream.readAll(maxReplyBytes);
    await this.stream.done;
    return decodeValue(this.descriptor.result, rest, RxErrorCode.RXGEN_CC_UNMARSHAL);
  }
}

export type ProcedureImplementation<A, R> = (args: A, info: ServerCallInfo) => R | Promise<R>;
export type SplitProcedureImplementation<A, R> = (args: A, call: CallStream, info: ServerCallInfo) => R | Promise<R>;
export type PackageImplementation = Record<string, ProcedureImplementation<any, any> | SplitProcedureImplementation<any, any>>;

/** Reads a split procedure's arguments off the front of the stream, leaving the raw bytes after them. */
async function readSplitArguments<A>(call: CallStream, codec: XdrCodec<A>): Promise<A> {
  let bytes: Uint8Array = new Uint8Array(0);
  // Bounded by SPLIT_ARGUMENTS_BYTES_MAX: each turn adds a chunk.
  for (;;) {
    try {
      const reader = new XdrReader(bytes);
      const value = codec.decode(reader);
      call.unread(bytes.subarray(reader.position));
      return value;
    } catch (error) {
      if (!(error instanceof XdrError) || error.code !== XdrErrorCode.SHORT_BUFFER) {
        throw new RxError('ERR_RX_BAD_PACKET', `${codec.name}: ${String(error)}`, RxErrorCode.RXGEN_SS_UNMARSHAL);
      }
    }
    const chunk = await call.read();
    if (chunk === undefined || bytes.byteLength + chunk.byteLength > SPLIT_ARGUMENTS_BYTES_MAX) {
      throw new RxError('ERR_RX_BAD_PACKET', `${codec.name}: arguments incomplete`, RxErrorCode.RXGEN_SS_UNMARSHAL);
    }
    bytes = concat([bytes, chunk]);
  }
}

/**
 * A service from an rxgen package: `implementation` has one function per
 * procedure name; missing ones answer RXGEN_OPCODE.
 */
export function serviceFromPackage(serviceId: number, descriptor: RxPackageDescriptor, implementation: PackageImplementation): RxService {
  const procedures = new Map<number, Procedure>();
  for (const procedure of descriptor.procedures) {
    const handler = implementation[procedure.name];
    if (handler === undefined) continue;
    if (procedure.split) {
      const split = handler as SplitProcedureImplementation<unknown, unknown>;
      procedures.set(procedure.opcode, {
        async split(call, info) {
          const args = await readSplitArguments(call, procedure.argument);
          const result = await split(args, call, info);
          await call.end(concat(encodeValue(procedure.result, result)));
        },
      });
    } else {
      const simple = handler as ProcedureImplementation<unknown, unknown>;
      const encodeReply = (result: unknown): Uint8Array => concat(encodeValue(procedure.result, result));
      // Not async: an implementation that answers at once gets its reply sent without a promise turn.
      procedures.set(procedure.opcode, (bytes, info) => {
        const args = decodeValue(procedure.argument, bytes, RxErrorCode.RXGEN_SS_UNMARSHAL);
        const result = simple(args, info);
        return result instanceof Promise ? result.then(encodeReply) : encodeReply(result);
      });
    }
  }
  return rxgenService(serviceId, descriptor.name, procedures);
}
