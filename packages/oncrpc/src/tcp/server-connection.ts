/**
 * ServerConnection: one accepted TCP connection of an OncRpcTcpServer.
 *
 * Life: created by the server on accept, owned by the server (in its
 * connection set) until the socket closes; main thread only. It owns its
 * RecordReader and counts its calls in flight.
 *
 * Flow control: at most `maxInFlightCallsPerConnection` calls are being served;
 * at the bound the socket stops reading (TCP pushes back on the client) and
 * resumes when a reply goes out. Reading also pauses while the socket's send
 * buffer is over its high-water mark, so a client that does not read its replies
 * cannot make us buffer without bound.
 *
 * Bad records (over the size or fragment bounds) and a stream that ends inside a
 * record close the connection: there is no way to resynchronise a record stream.
 * Replies to calls still in flight when the socket closes are discarded.
 */
import type { Socket } from 'node:net';
import type { Dispatcher, RpcReply } from '../dispatcher.js';
import { OncRpcError } from '../errors.js';
import type { RpcTransportContext } from '../service.js';
import type { FilledTcpServerOptions } from './options.js';
import { RecordReader, recordMark, type RecordSink } from './record-reader.js';

export interface TcpCallContext extends RpcTransportContext {
  readonly transport: 'tcp';
}

export interface ServerConnectionMetrics {
  badRecords: number;
  truncatedStreams: number;
  discardedReplies: number;
}

export class ServerConnection implements RecordSink {
  private readonly reader: RecordReader;
  private readonly context: TcpCallContext;
  private inFlight = 0;
  private closed = false;
  private waitingForDrain = false;

  constructor(
    private readonly socket: Socket,
    private readonly dispatcher: Dispatcher<TcpCallContext>,
    private readonly options: FilledTcpServerOptions,
    private readonly metrics: ServerConnectionMetrics,
    private readonly onClose: (connection: ServerConnection) => void,
  ) {
    this.reader = new RecordReader(options, this);
    this.context = {
      transport: 'tcp',
      ...(socket.remoteAddress !== undefined ? { remoteAddress: socket.remoteAddress } : {}),
      ...(socket.remotePort !== undefined ? { remotePort: socket.remotePort } : {}),
    };
    this.sendReply = this.sendReply.bind(this);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('drain', () => this.onDrain());
    socket.on('error', () => {});
    socket.on('close', () => this.onSocketClose());
  }

  get callsInFlight(): number {
    return this.inFlight;
  }

  destroy(): void {
    this.socket.destroy();
  }

  onRecord(record: Buffer): boolean {
    const reply = this.dispatcher.handleCall(record, this.context);
    if (reply === null) return true;
    this.inFlight++;
    if (reply instanceof Promise) reply.then(this.sendReply, () => this.destroy());
    else this.sendReply(reply);
    return this.inFlight < this.options.maxInFlightCallsPerConnection;
  }

  private onData(chunk: Buffer): void {
    this.guard(() => this.reader.push(chunk));
    this.updateReading();
  }

  /** Runs record delivery; a protocol violation closes the connection. */
  private guard(deliver: () => void): void {
    try {
      deliver();
    } catch (error) {
      if (!(error instanceof OncRpcError)) throw error;
      this.metrics.badRecords++;
      this.closed = true;
      this.socket.destroy();
    }
  }

  private onEnd(): void {
    if (this.reader.midRecord) this.metrics.truncatedStreams++;
    // Replies still being computed are discarded: the client half-closed or left.
    this.socket.end();
  }

  private sendReply(reply: RpcReply): void {
    this.inFlight--;
    if (this.closed || this.socket.destroyed || !this.socket.writable) {
      this.metrics.discardedReplies++;
      return;
    }
    const message = reply.message;
    this.socket.cork();
    this.socket.write(recordMark(message.byteLength));
    for (const chunk of message.toChunks()) this.socket.write(chunk);
    this.socket.uncork();
    if (this.socket.writableNeedDrain) this.waitingForDrain = true;
    this.updateReading();
  }

  private onDrain(): void {
    this.waitingForDrain = false;
    this.updateReading();
  }

  private updateReading(): void {
    if (this.closed) return;
    const belowBound = this.inFlight < this.options.maxInFlightCallsPerConnection;
    if (belowBound && this.reader.stopped) this.guard(() => this.reader.resume());
    if (this.waitingForDrain || this.reader.stopped) this.socket.pause();
    else this.socket.resume();
  }

  private onSocketClose(): void {
    this.closed = true;
    this.onClose(this);
  }
}
