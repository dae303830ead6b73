/**
 * OncRpcTcpClient: calls ONC RPC procedures over one TCP connection with record
 * marking.
 *
 * Life: created by `OncRpcTcpClient.connect()`, owned by the caller, closed
 * with close() (or when the peer closes); main thread. It owns the socket, its
 * RecordReader and the table of pending calls.
 *
 * Matching: each call gets the next xid; replies are matched by xid, in any
 * order. A call ends with its result, with an OncRpcError carrying the reply's
 * status, with ERR_ONCRPC_TIMEOUT (its xid is forgotten; a late reply is counted
 * and dropped), or with ERR_ONCRPC_CONNECTION_CLOSED. At most `maxInFlightCalls`
 * are pending; more are refused at once with ERR_ONCRPC_TOO_MANY_CALLS.
 */
import { connect, type Socket } from 'node:net';
import { XdrReader, XdrWriter, isXdrError, type OncRpcProcedureDescriptor, type XdrCodec } from '@roce-rpc/xdr';
import { authNone, type OpaqueAuth } from '../auth.js';
import { OncRpcError, OncRpcErrorCode } from '../errors.js';
import { readReplyBody, writeCallHeader } from '../message.js';
import { MESSAGE_PREFIX_BYTES, MessageType } from '../protocol.js';
import { fillTcpClientOptions, type FilledTcpClientOptions, type TcpClientOptions } from './options.js';
import { TickCork } from './tick-cork.js';
import { RecordReader, recordMark, type RecordSink } from './record-reader.js';

interface PendingCall {
  resolve(value: unknown): void;
  reject(error: Error): void;
  result: XdrCodec<unknown>;
  timer: NodeJS.Timeout;
}

export interface CallOptions {
  timeoutMs?: number;
  credential?: OpaqueAuth;
}

export interface TcpClientMetrics {
  calls: number;
  timeouts: number;
  lateReplies: number;
  badReplies: number;
}

export class OncRpcTcpClient implements RecordSink {
  readonly metrics: TcpClientMetrics = { calls: 0, timeouts: 0, lateReplies: 0, badReplies: 0 };
  /** Credential sent with every call unless a call overrides it. */
  credential: OpaqueAuth = authNone;
  private readonly pending = new Map<number, PendingCall>();
  private readonly reader: RecordReader;
  private nextXid = (Math.random() * 0x1_0000_0000) >>> 0;
  private closedError: OncRpcError | null = null;
  private readonly cork: TickCork;

  private constructor(
    private readonly socket: Socket,
    private readonly options: FilledTcpClientOptions,
  ) {
    this.reader = new RecordReader(options, this);
    this.expire = this.expire.bind(this);
    this.cork = new TickCork(socket);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.fail(new OncRpcError(OncRpcErrorCode.CONNECTION_CLOSED, `connection failed: ${error.message}`, {}, { cause: error })));
    socket.on('close', () => this.fail(new OncRpcError(OncRpcErrorCode.CONNECTION_CLOSED, 'connection closed')));
  }

  static connect(options: TcpClientOptions): Promise<OncRpcTcpClient> {
    const filled = fillTcpClientOptions(options);
    return new Promise((resolve, reject) => {
      const socket = connect({
        host: filled.host,
        port: filled.port,
        ...(filled.localPort !== undefined ? { localPort: filled.localPort } : {}),
      });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new OncRpcTcpClient(socket, filled));
      });
    });
  }

  get callsInFlight(): number {
    return this.pending.size;
  }

  /** Calls `procedure` of program/version with `argument`; resolves with the decoded result. */
  call<Argument, Result>(
    program: number,
    version: number,
    procedure: OncRpcProcedureDescriptor<Argument, Result>,
    argument: Argument,
    options: CallOptions = {},
  ): Promise<Result> {
    if (this.closedError !== null) return Promise.reject(this.closedError);
    if (this.pending.size >= this.options.maxInFlightCalls) {
      return Promise.reject(new OncRpcError(OncRpcErrorCode.TOO_MANY_CALLS, `${this.pending.size} calls already in flight`));
    }
    const xid = this.allocateXid();
    const writer = new XdrWriter({ maxBytes: this.options.maxRecordBytes });
    try {
      writeCallHeader(writer, {
        xid,
        program,
        version,
        procedure: procedure.procedure,
        credential: options.credential ?? this.credential,
        verifier: authNone,
      });
      procedure.argument.encode(writer, argument);
    } catch (error) {
      return Promise.reject(error);
    }
    const message = writer.finish();
    this.metrics.calls++;
    return new Promise<Result>((resolve, reject) => {
      const timer = setTimeout(this.expire, options.timeoutMs ?? this.options.timeoutMs, xid);
      this.pending.set(xid, { resolve: resolve as (value: unknown) => void, reject, result: procedure.result, timer });
      this.cork.corkUntilNextTick();
      this.socket.write(recordMark(message.byteLength));
      for (const chunk of message.toChunks()) this.socket.write(chunk);
    });
  }

  /** Closes the connection; pending calls end with ERR_ONCRPC_CONNECTION_CLOSED. */
  close(): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
      this.socket.destroySoon();
    });
  }

  onRecord(record: Buffer): boolean {
    if (record.length < MESSAGE_PREFIX_BYTES) return this.badReply();
    const reader = new XdrReader(record);
    const xid = reader.readUint();
    if (reader.readUint() !== MessageType.REPLY) return this.badReply();
    const call = this.pending.get(xid);
    if (call === undefined) {
      this.metrics.lateReplies++;
      return true;
    }
    this.pending.delete(xid);
    clearTimeout(call.timer);
    try {
      readReplyBody(reader, xid);
      const result = call.result.decode(reader);
      reader.assertFinished();
      call.resolve(result);
    } catch (error) {
      if (error instanceof OncRpcError) call.reject(error);
      else if (isXdrError(error)) call.reject(new OncRpcError(OncRpcErrorCode.BAD_REPLY, `reply does not decode: ${error.message}`, { xid }, { cause: error }));
      else throw error;
    }
    return true;
  }

  private onData(chunk: Buffer): void {
    try {
      this.reader.push(chunk);
    } catch (error) {
      if (!(error instanceof OncRpcError)) throw error;
      this.fail(error);
      this.socket.destroy();
    }
  }

  private badReply(): boolean {
    this.metrics.badReplies++;
    return true;
  }

  private expire(xid: number): void {
    const call = this.pending.get(xid);
    if (call === undefined) return;
    this.pending.delete(xid);
    this.metrics.timeouts++;
    call.reject(new OncRpcError(OncRpcErrorCode.TIMEOUT, `call ${xid} timed out`, { xid }));
  }

  private allocateXid(): number {
    // Skip xids still pending after a wrap (2^32 calls later): never two calls with one xid.
    do this.nextXid = (this.nextXid + 1) >>> 0;
    while (this.pending.has(this.nextXid));
    return this.nextXid;
  }

  private fail(error: OncRpcError): void {
    this.closedError ??= error;
    for (const [xid, call] of this.pending) {
      clearTimeout(call.timer);
      this.pending.delete(xid);
      call.reject(error);
    }
  }
}
