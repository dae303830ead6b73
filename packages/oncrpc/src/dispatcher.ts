/**
 * Dispatcher: the transport-independent ONC RPC server core.
 *
 * Operation: a transport hands `handleCall` the bytes of one call message (a TCP
 * record, or the RPC message of an RPC-over-RDMA RDMA_MSG with its read chunks)
 * and gets back an RpcReply - synchronously when the handler is synchronous, as
 * a promise otherwise - or null when the message must be dropped (too short to
 * carry an xid, or not a CALL). The dispatcher never throws for bad input: every
 * malformed call becomes the reply RFC 5531 prescribes:
 *
 *   rpcvers != 2                       MSG_DENIED  RPC_MISMATCH (2, 2)
 *   credential/verifier malformed,     MSG_DENIED  AUTH_ERROR   AUTH_BADCRED / AUTH_BADVERF
 *     unknown, or over the limits
 *   flavor not accepted by the program MSG_DENIED  AUTH_ERROR   AUTH_TOOWEAK
 *   unknown program                    PROG_UNAVAIL
 *   unknown version                    PROG_MISMATCH (lowest, highest registered)
 *   unknown procedure                  PROC_UNAVAIL
 *   arguments do not decode exactly    GARBAGE_ARGS
 *   handler throws / result won't fit  SYSTEM_ERR
 *
 * Ownership: the reply owns a fresh XdrEncoding; bulk opaque results (READ
 * data) stay references to the handler's buffers (XdrBulkItem), so an RDMA
 * transport can send DDP-eligible ones as write chunks and a TCP transport
 * gathers them into one write. Decoded arguments are views of the call bytes,
 * which the transport must keep unchanged until the reply is produced.
 *
 * Threading: main thread (or the worker that owns the transport); handlers run
 * on it. Registration happens before serving; dispatch only reads the tables.
 */
import assert from 'node:assert';
import {
  XdrReader,
  XdrWriter,
  isXdrError,
  xdrVoid,
  type OncRpcProcedureDescriptor,
  type OncRpcVersionDescriptor,
  type XdrEncoding,
  type XdrReadChunk,
  type XdrReaderOptions,
  type XdrStringEncoding,
  type XdrWriterOptions,
} from '@roce-rpc/xdr';
import { parseAuthSys, type RpcCredential } from './auth.js';
import { OncRpcError, OncRpcErrorCode } from './errors.js';
import { readCallBody, writeAcceptedHeader, writeAuthError, writeProgramMismatch, writeRpcMismatch, type CallHeader } from './message.js';
import { AcceptStatus, AuthFlavor, AuthStatus, MESSAGE_PREFIX_BYTES, MessageType, NULL_PROCEDURE, RPC_VERSION } from './protocol.js';
import type { ProgramRegistrationOptions, RpcCall, RpcHandler, RpcTransportContext, VersionHandlers } from './service.js';

/** What a reply was, for metrics and transports. */
export type ReplyKind =
  | 'SUCCESS'
  | 'PROG_UNAVAIL'
  | 'PROG_MISMATCH'
  | 'PROC_UNAVAIL'
  | 'GARBAGE_ARGS'
  | 'SYSTEM_ERR'
  | 'RPC_MISMATCH'
  | 'AUTH_ERROR';

export interface RpcReply {
  readonly xid: number;
  readonly kind: ReplyKind;
  /** The whole reply message; bulk results stay references (see XdrEncoding). */
  readonly message: XdrEncoding;
  /** The procedure that produced a SUCCESS reply (its ddp hints), else null. */
  readonly procedure: OncRpcProcedureDescriptor | null;
}

export interface DispatchOptions {
  /** Opaque data an RDMA transport pulled with RDMA Read, placed at its XDR position. */
  readChunks?: readonly XdrReadChunk[];
}

export interface DispatcherOptions {
  /** Bounds for reply encoding (maxBytes, bulkThresholdBytes). */
  replyWriter?: Omit<XdrWriterOptions, 'buffer' | 'stringEncoding'>;
  /** XDR strings as 'utf8' (default) or 'latin1' (lossless bytes, e.g. NFS file names), both ways. */
  stringEncoding?: XdrStringEncoding;
  /** Told about handler exceptions (answered SYSTEM_ERR); the default ignores them. */
  onHandlerError?: (error: unknown, call: RpcCall) => void;
}

export interface DispatcherMetrics {
  calls: number;
  dropped: number;
  replies: Record<ReplyKind, number>;
}

interface RegisteredProcedure {
  descriptor: OncRpcProcedureDescriptor;
  handler: RpcHandler<unknown, unknown, any>;
}

interface RegisteredVersion {
  procedures: Map<number, RegisteredProcedure>;
}

interface RegisteredProgram {
  versions: Map<number, RegisteredVersion>;
  lowestVersion: number;
  highestVersion: number;
  acceptedFlavors: ReadonlySet<number>;
}

const defaultAcceptedFlavors = [AuthFlavor.AUTH_NONE, AuthFlavor.AUTH_SYS];

const nullProcedure: OncRpcProcedureDescriptor<void, void> = {
  name: 'NULL',
  procedure: NULL_PROCEDURE,
  argument: xdrVoid,
  result: xdrVoid,
  ddp: { argument: false, result: false },
};

function answerNull(): void {}

/** Every AUTH_NONE call shares this credential: nothing in it varies. */
const anonymous: RpcCredential = Object.freeze({ flavor: AuthFlavor.AUTH_NONE });

/** Below this, a reply is all header: start small, the slab allocator serves it. */
const errorReplyBytes = 64;

export class Dispatcher<Context extends RpcTransportContext = RpcTransportContext> {
  readonly metrics: DispatcherMetrics = {
    calls: 0,
    dropped: 0,
    replies: { SUCCESS: 0, PROG_UNAVAIL: 0, PROG_MISMATCH: 0, PROC_UNAVAIL: 0, GARBAGE_ARGS: 0, SYSTEM_ERR: 0, RPC_MISMATCH: 0, AUTH_ERROR: 0 },
  };
  private readonly programs = new Map<number, RegisteredProgram>();
  private readonly replyWriter: Omit<XdrWriterOptions, 'buffer'>;
  private readonly stringEncoding: XdrStringEncoding;
  /** Reader options when they differ from the defaults, else undefined (no object per call). */
  private readonly readerOptions: XdrReaderOptions | undefined;
  private readonly onHandlerError: (error: unknown, call: RpcCall) => void;
  /**
   * The last AUTH_SYS credential parsed and a copy of its body: a client sends the same
   * body on every call, and comparing ~50 bytes costs less than parsing them again
   * (a reader, a UTF-8 machine name, a gid array). Shared with handlers, so frozen.
   */
  private lastAuthSysBody: Uint8Array = new Uint8Array(0);
  private lastAuthSys: RpcCredential | null = null;

  constructor(options: DispatcherOptions = {}) {
    this.stringEncoding = options.stringEncoding ?? 'utf8';
    this.replyWriter = { ...options.replyWriter, stringEncoding: this.stringEncoding };
    this.readerOptions = this.stringEncoding === 'utf8' ? undefined : { stringEncoding: this.stringEncoding };
    this.onHandlerError = options.onHandlerError ?? (() => {});
  }

  /**
   * Serves one version of a program. Procedures without a handler answer
   * PROC_UNAVAIL, except procedure 0 which answers as the NULL procedure.
   */
  addVersion<V extends OncRpcVersionDescriptor>(
    program: number,
    version: V,
    handlers: VersionHandlers<V, Context>,
    options: ProgramRegistrationOptions = {},
  ): this {
    const registered = this.programEntry(program, options);
    if (registered.versions.has(version.version)) {
      throw new OncRpcError(OncRpcErrorCode.BAD_REGISTRATION, `program ${program} version ${version.version} is already registered`);
    }
    const procedures = new Map<number, RegisteredProcedure>();
    const byName = handlers as Record<string, RpcHandler<unknown, unknown, Context> | undefined>;
    for (const descriptor of version.procedures) {
      const handler = byName[descriptor.name];
      if (handler !== undefined) procedures.set(descriptor.procedure, { descriptor, handler });
    }
    if (!procedures.has(NULL_PROCEDURE)) procedures.set(NULL_PROCEDURE, { descriptor: nullProcedure, handler: answerNull });
    registered.versions.set(version.version, { procedures });
    registered.lowestVersion = Math.min(registered.lowestVersion, version.version);
    registered.highestVersion = Math.max(registered.highestVersion, version.version);
    return this;
  }

  /** Programs and versions served, for rpcbind registration. */
  registrations(): { program: number; version: number }[] {
    const list: { program: number; version: number }[] = [];
    for (const [program, entry] of this.programs) for (const version of entry.versions.keys()) list.push({ program, version });
    return list;
  }

  /**
   * Serves one call message. Returns the reply (or a promise of it when the
   * handler is asynchronous), or null when the message is dropped.
   */
  handleCall(bytes: Uint8Array, context: Context, options?: DispatchOptions): RpcReply | Promise<RpcReply> | null {
    this.metrics.calls++;
    if (bytes.length < MESSAGE_PREFIX_BYTES) return this.drop();
    const reader = new XdrReader(
      bytes,
      options?.readChunks ? { readChunks: options.readChunks, stringEncoding: this.stringEncoding } : this.readerOptions,
    );
    const xid = reader.readUint();
    if (reader.readUint() !== MessageType.CALL) return this.drop();
    let header: CallHeader;
    try {
      header = readCallBody(reader, xid);
    } catch (error) {
      if (!isXdrError(error)) throw error;
      return this.headerError(bytes, xid);
    }
    if (header.rpcVersion !== RPC_VERSION) return this.reject(xid, 'RPC_MISMATCH', (writer) => writeRpcMismatch(writer, xid));
    const credential = this.authenticate(header);
    if (typeof credential === 'number') return this.authError(xid, credential);
    return this.route(header, credential, reader, context);
  }

  private route(header: CallHeader, credential: RpcCredential, reader: XdrReader, context: Context): RpcReply | Promise<RpcReply> {
    const xid = header.xid;
    const program = this.programs.get(header.program);
    if (program === undefined) return this.acceptError(xid, 'PROG_UNAVAIL', AcceptStatus.PROG_UNAVAIL);
    if (!program.acceptedFlavors.has(header.credential.flavor)) return this.authError(xid, AuthStatus.AUTH_TOOWEAK);
    const version = program.versions.get(header.version);
    if (version === undefined) {
      return this.reject(xid, 'PROG_MISMATCH', (writer) => writeProgramMismatch(writer, xid, program.lowestVersion, program.highestVersion));
    }
    const procedure = version.procedures.get(header.procedure);
    if (procedure === undefined) return this.acceptError(xid, 'PROC_UNAVAIL', AcceptStatus.PROC_UNAVAIL);
    let argument: unknown;
    try {
      argument = procedure.descriptor.argument.decode(reader);
      reader.assertFinished();
    } catch (error) {
      if (!isXdrError(error)) throw error;
      return this.acceptError(xid, 'GARBAGE_ARGS', AcceptStatus.GARBAGE_ARGS);
    }
    const call: RpcCall<Context> = {
      xid,
      program: header.program,
      version: header.version,
      procedure: header.procedure,
      credential,
      context,
    };
    return this.invoke(procedure, argument, call);
  }

  private invoke(procedure: RegisteredProcedure, argument: unknown, call: RpcCall<Context>): RpcReply | Promise<RpcReply> {
    let result: unknown;
    try {
      result = procedure.handler(argument, call);
    } catch (error) {
      return this.handlerFailed(error, call);
    }
    if (result instanceof Promise) return this.settle(procedure, result, call);
    return this.success(procedure.descriptor, result, call);
  }

  private async settle(procedure: RegisteredProcedure, pending: Promise<unknown>, call: RpcCall<Context>): Promise<RpcReply> {
    let result: unknown;
    try {
      result = await pending;
    } catch (error) {
      return this.handlerFailed(error, call);
    }
    return this.success(procedure.descriptor, result, call);
  }

  private success(descriptor: OncRpcProcedureDescriptor, result: unknown, call: RpcCall<Context>): RpcReply {
    const writer = new XdrWriter(this.replyWriter);
    try {
      writeAcceptedHeader(writer, call.xid, AcceptStatus.SUCCESS);
      descriptor.result.encode(writer, result);
    } catch (error) {
      // A result that does not fit its type or the reply bound is the server's fault.
      return this.handlerFailed(error, call);
    }
    this.metrics.replies.SUCCESS++;
    return { xid: call.xid, kind: 'SUCCESS', message: writer.finish(), procedure: descriptor };
  }

  private handlerFailed(error: unknown, call: RpcCall<Context>): RpcReply {
    if (error instanceof OncRpcError && error.code === OncRpcErrorCode.GARBAGE_ARGS) {
      return this.acceptError(call.xid, 'GARBAGE_ARGS', AcceptStatus.GARBAGE_ARGS);
    }
    this.onHandlerError(error, call as RpcCall);
    return this.acceptError(call.xid, 'SYSTEM_ERR', AcceptStatus.SYSTEM_ERR);
  }

  /**
   * The call header did not decode. If the credential or verifier is what broke
   * (oversized or truncated body), that is a bad credential; if the fixed part is
   * cut short, nothing can be routed and the message is dropped.
   */
  private headerError(bytes: Uint8Array, xid: number): RpcReply | null {
    const fixedHeaderBytes = 6 * 4;
    if (bytes.length < fixedHeaderBytes) return this.drop();
    const rpcVersion = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readUInt32BE(8);
    if (rpcVersion !== RPC_VERSION) return this.reject(xid, 'RPC_MISMATCH', (writer) => writeRpcMismatch(writer, xid));
    return this.authError(xid, AuthStatus.AUTH_BADCRED);
  }

  /** Checks the credential and verifier; returns the credential or an auth_stat. */
  private authenticate(header: CallHeader): RpcCredential | number {
    const { credential, verifier } = header;
    if (credential.flavor === AuthFlavor.AUTH_NONE) {
      if (credential.body.length !== 0) return AuthStatus.AUTH_BADCRED;
      if (verifier.flavor !== AuthFlavor.AUTH_NONE) return AuthStatus.AUTH_BADVERF;
      return anonymous;
    }
    if (credential.flavor === AuthFlavor.AUTH_SYS) {
      if (this.lastAuthSys !== null && sameBytes(credential.body, this.lastAuthSysBody)) {
        return verifier.flavor === AuthFlavor.AUTH_NONE ? this.lastAuthSys : AuthStatus.AUTH_BADVERF;
      }
      const sys = parseAuthSys(credential.body);
      if (sys === null) return AuthStatus.AUTH_BADCRED;
      if (verifier.flavor !== AuthFlavor.AUTH_NONE) return AuthStatus.AUTH_BADVERF;
      this.lastAuthSysBody = Uint8Array.from(credential.body);
      this.lastAuthSys = Object.freeze({ flavor: AuthFlavor.AUTH_SYS, sys: Object.freeze({ ...sys, gids: Object.freeze(sys.gids) as number[] }) });
      return this.lastAuthSys;
    }
    return AuthStatus.AUTH_BADCRED;
  }

  private authError(xid: number, authStatus: number): RpcReply {
    return this.reject(xid, 'AUTH_ERROR', (writer) => writeAuthError(writer, xid, authStatus));
  }

  private acceptError(xid: number, kind: ReplyKind, status: (typeof AcceptStatus)[keyof typeof AcceptStatus]): RpcReply {
    assert(status !== AcceptStatus.SUCCESS);
    return this.reject(xid, kind, (writer) => writeAcceptedHeader(writer, xid, status));
  }

  private reject(xid: number, kind: ReplyKind, write: (writer: XdrWriter) => void): RpcReply {
    const writer = new XdrWriter({ initialBytes: errorReplyBytes });
    write(writer);
    this.metrics.replies[kind]++;
    return { xid, kind, message: writer.finish(), procedure: null };
  }

  private drop(): null {
    this.metrics.dropped++;
    return null;
  }

  private programEntry(program: number, options: ProgramRegistrationOptions): RegisteredProgram {
    assert(program >>> 0 === program, 'program number must be an unsigned 32-bit integer');
    let entry = this.programs.get(program);
    if (entry === undefined) {
      entry = {
        versions: new Map(),
        lowestVersion: Number.MAX_SAFE_INTEGER,
        highestVersion: 0,
        acceptedFlavors: new Set(options.acceptedFlavors ?? defaultAcceptedFlavors),
      };
      this.programs.set(program, entry);
    }
    return entry;
  }
}

function sameBytes(bytes: Uint8Array, other: Uint8Array): boolean {
  if (bytes.length !== other.length) return false;
  for (let index = 0; index < bytes.length; index++) if (bytes[index] !== other[index]) return false;
  return true;
}
