/**
 * ReplyBatch: the replies a server connection produces in one tick, written
 * to its socket together on the next tick. Small replies are copied, record
 * marks included, into one buffer and written once: a NULL reply written as
 * its own mark and message costs two stream writes (each a request object
 * and a trip through Writable), a tenth of the whole call. A batch over
 * COALESCE_BYTES_MAX goes out as its chunks under one cork instead, so bulk
 * data is never copied.
 *
 * Life: created by the ServerConnection that owns the socket, owned by it,
 * main thread only. Bounded by the connection's calls in flight: a reply is
 * added only for a call the connection admitted, and every tick empties it.
 */
import type { Socket } from 'node:net';
import type { XdrEncoding } from '@roce-rpc/xdr';
import { RECORD_HEADER_BYTES, RECORD_LAST_FRAGMENT } from '../protocol.js';
import { recordMark } from './record-reader.js';

/** Up to this many bytes a tick's replies are copied into one buffer; above, bulk data would be copied for nothing. */
const COALESCE_BYTES_MAX = 64 * 1024;

export class ReplyBatch {
  private readonly messages: XdrEncoding[] = [];
  /** Bytes of the batch, record marks included. */
  private bytes = 0;
  private scheduled = false;

  constructor(
    private readonly socket: Socket,
    /** After each write: the connection checks the socket's backpressure. */
    private readonly written: () => void,
  ) {
    this.flush = this.flush.bind(this);
  }

  add(message: XdrEncoding): void {
    this.messages.push(message);
    this.bytes += RECORD_HEADER_BYTES + message.byteLength;
    if (this.scheduled) return;
    this.scheduled = true;
    process.nextTick(this.flush);
  }

  /** Writes the batch now (also called before the connection ends its side). */
  flush(): void {
    this.scheduled = false;
    if (this.messages.length === 0 || this.socket.destroyed) {
      this.messages.length = 0;
      this.bytes = 0;
      return;
    }
    if (this.bytes <= COALESCE_BYTES_MAX) this.socket.write(this.coalesced());
    else this.writeChunks();
    this.messages.length = 0;
    this.bytes = 0;
    this.written();
  }

  private coalesced(): Buffer {
    const buffer = Buffer.allocUnsafe(this.bytes);
    let offset = 0;
    for (const message of this.messages) {
      buffer.writeUInt32BE((RECORD_LAST_FRAGMENT | message.byteLength) >>> 0, offset);
      offset += RECORD_HEADER_BYTES;
      for (const chunk of message.toChunks()) {
        buffer.set(chunk, offset);
        offset += chunk.byteLength;
      }
    }
    return buffer;
  }

  private writeChunks(): void {
    this.socket.cork();
    for (const message of this.messages) {
      this.socket.write(recordMark(message.byteLength));
      for (const chunk of message.toChunks()) this.socket.write(chunk);
    }
    this.socket.uncork();
  }
}
