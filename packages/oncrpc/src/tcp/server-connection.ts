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
 * Replies of one tick are written together (ReplyBatch).
 *
 * Bad records (over the size or fragment bounds) close the connection: there is
 * no way to resynchronise a record stream. When the client shuts down its side,
 * the calls in flight are finished and answered, then ours is shut down too (a
 * partial record left at that point is counted as a truncated stream). Replies
 * to calls still in flight when the socket is destroyed are discarded.
 *
 * A closing server may ask a connection to finish: it reads no more calls,
 * answers those in flight, flushes its replies and closes.
 */
import type { Socket } from 'node:net';
import type { Dispatcher, RpcReply } from '../dispatcher.js';
import { OncRpcError } from '../errors.js';
import type { RpcTransportContext } from '../service.js';
import type { FilledTcpServerOptions } from './options.js';
import { RecordReader, type RecordSink } from './record-reader.js';
import { ReplyBatch } from './reply-batch.js';

export interface TcpCallContext extends RpcTransportContext {
  readonly transport: 'tcp';
}

export interface ServerConnectionMetrics {
  badRecords: number;
  /** Connections closed because the dispatcher threw (a bug, never bad input). */
  internalErrors: number;
  truncatedStreams: number;
  discardedReplies: number;
}

export class ServerConnection implements RecordSink {
  private readonly reader: RecordReader;
  private readonly context: TcpCallContext;
  private readonly replies: ReplyBatch;
  private inFlight = 0;
  private closed = false;
  private waitingForDrain = false;
  private peerEnded = false;
  private finishing = false;

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
    this.replies = new ReplyBatch(socket, () => this.afterWrite());
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

  /** Reads no more calls; closes once the calls in flight are answered and their replies flushed. */
  finishAndClose(): void {
    this.finishing = true;
    this.socket.pause();
    if (this.inFlight > 0) return;
    this.replies.flush();
    this.socket.destroySoon();
  }

  onRecord(record: Buffer): boolean {
    let reply: RpcReply | Promise<RpcReply> | null;
    try {
      reply = this.dispatcher.handleCall(record, this.context);
    } catch {
      // Bad input never gets here (the dispatcher answers it); a bug in our own code
      // may. It costs this connection, not the process.
      this.metrics.internalErrors++;
      this.closed = true;
      this.socket.destroy();
      return false;
    }
    if (reply === null) return true;
    this.inFlight++;
    if (reply instanceof Promise) reply.then(this.sendReply, () => this.destroy());
    else this.sendReply(reply);
    return this.inFlight < this.options.maxInFlightCallsPerConnection;
  }

  private onData(chunk: Buffer): void {
    // A chunk read before the pause took effect: its calls would start after the drain began.
    if (this.finishing) return;
    try {
      this.reader.push(chunk);
    } catch (error) {
      this.badRecord(error);
    }
    this.updateReading();
  }

  /** A protocol violation in the record stream closes the connection. */
  private badRecord(error: unknown): void {
    if (!(error instanceof OncRpcError)) throw error;
    this.metrics.badRecords++;
    this.closed = true;
    this.socket.destroy();
  }

  /** The client shut down its side: finish the calls in flight, then close ours. */
  private onEnd(): void {
    if (this.reader.midRecord) this.metrics.truncatedStreams++;
    this.peerEnded = true;
    if (this.inFlight > 0) return;
    this.replies.flush();
    this.socket.end();
  }

  private sendReply(reply: RpcReply): void {
    this.inFlight--;
    if (this.closed || this.socket.destroyed || !this.socket.writable) {
      this.metrics.discardedReplies++;
      return;
    }
    this.replies.add(reply.message);
    if (this.finishing && this.inFlight === 0) {
      this.replies.flush();
      this.socket.destroySoon();
      return;
    }
    if (this.peerEnded && this.inFlight === 0) {
      this.replies.flush();
      this.socket.end();
      return;
    }
    this.updateReading();
  }

  /** A batch of replies went into the socket: stop reading while its send buffer is over the mark. */
  private afterWrite(): void {
    if (!this.socket.writableNeedDrain || this.waitingForDrain) return;
    this.waitingForDrain = true;
    this.updateReading();
  }

  private onDrain(): void {
    this.waitingForDrain = false;
    this.updateReading();
  }

  private updateReading(): void {
    if (this.closed) return;
    if (this.finishing) {
      // Held records stay unread: a finishing connection starts no new calls.
      this.socket.pause();
      return;
    }
    const belowBound = this.inFlight < this.options.maxInFlightCallsPerConnection;
    if (belowBound && this.reader.stopped) {
      try {
        this.reader.resume();
      } catch (error) {
        this.badRecord(error);
        return;
      }
    }
    if (this.waitingForDrain || this.reader.stopped) this.socket.pause();
    else this.socket.resume();
  }

  private onSocketClose(): void {
    this.closed = true;
    this.onClose(this);
  }
}
