/**
 * The application's handle on a call: promise-based reads and writes with
 * backpressure, for both client calls and server handlers.
 *
 * Life: created with its Call by the client API or the service dispatcher,
 * on the call's channel thread; used only on that thread (a server handler
 * runs on the worker that owns the channel). Holds no buffers of its own.
 */
import { RxError } from '../errors.js';
import { RxErrorCode, OPCODE_SIZE } from '../protocol.js';
import { decodeOpcode } from '../wire/codec.js';
import type { Call } from './call.js';

/** Reads a handler may have waiting at once: one read and one write. */
const WAITERS_MAX = 2;

export class CallStream {
  readonly call: Call;
  private readonly waiters: (() => void)[] = [];
  /** Created by the first `done` (most server handlers never ask): a small call allocates no promise for it. */
  private settled: Promise<void> | undefined;
  private settle: ((error: RxError | undefined) => void) | undefined;
  private carry: Uint8Array | undefined;

  constructor(call: Call) {
    this.call = call;
    call.onWake = () => this.wake();
  }

  private wake(): void {
    if (this.settle !== undefined) {
      if (this.call.phase === 'complete') this.settle(undefined);
      else if (this.call.phase === 'failed') this.settle(this.call.error);
    }
    // Woken on every packet and ACK of a call: allocate nothing when no one waits.
    if (this.waiters.length === 0) return;
    const waiting = this.waiters.splice(0);
    for (const resume of waiting) resume();
  }

  private wait(): Promise<void> {
    if (this.waiters.length >= WAITERS_MAX) throw new RxError('ERR_RX_BAD_PACKET', 'one read and one write may wait at a time');
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private throwIfFailed(): void {
    if (this.call.phase === 'failed') throw this.call.error ?? new RxError('ERR_RX_CALL_DEAD', 'call failed');
  }

  /** Resolves when the call completed, rejects with its error. */
  get done(): Promise<void> {
    if (this.settled === undefined) {
      this.settled = new Promise<void>((resolve, reject) => {
        this.settle = (error) => (error === undefined ? resolve() : reject(error));
      });
      // Whoever asked may still drop it: a failed call must not become an unhandled rejection.
      this.settled.catch(() => undefined);
      this.wake();
    }
    return this.settled;
  }

  /** The next chunk of the peer's data; undefined at its end. */
  async read(): Promise<Uint8Array | undefined> {
    if (this.carry !== undefined) {
      const chunk = this.carry;
      this.carry = undefined;
      return chunk;
    }
    // Bounded by the peer's data: each wake either yields a chunk or ends.
    for (;;) {
      this.throwIfFailed();
      const chunk = this.call.read();
      if (chunk !== undefined) return chunk;
      if (this.call.readEnded()) return undefined;
      await this.wait();
    }
  }

  /** Puts bytes back in front of the stream: the next read() returns them first. */
  unread(bytes: Uint8Array): void {
    if (bytes.byteLength === 0) return;
    this.carry = this.carry === undefined ? bytes : concat([bytes, this.carry]);
  }

  /** Exactly `length` bytes, or ERR_RX_SHORT_PACKET when the data ends first. */
  async readExactly(length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const chunk = await this.read();
      if (chunk === undefined) throw new RxError('ERR_RX_SHORT_PACKET', `call data ended after ${filled} of ${length} bytes`, RxErrorCode.RXGEN_SS_UNMARSHAL);
      const take = Math.min(chunk.byteLength, length - filled);
      out.set(chunk.subarray(0, take), filled);
      filled += take;
      if (take < chunk.byteLength) this.carry = chunk.subarray(take);
    }
    return out;
  }

  /** All remaining data, up to `maxBytes` (hostile peers cannot make us buffer more). */
  async readAll(maxBytes = 16 * 1024 * 1024): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (let chunk = await this.read(); chunk !== undefined; chunk = await this.read()) {
      total += chunk.byteLength;
      if (total > maxBytes) throw new RxError('ERR_RX_BAD_PACKET', `call data exceeds ${maxBytes} bytes`, RxErrorCode.RXGEN_SS_UNMARSHAL);
      chunks.push(chunk);
    }
    return concat(chunks, total);
  }

  /**
   * Server side: the whole request at once when all of it has arrived and
   * none of it was read yet (a small call's usual case, the handler starting
   * with its packets taken); undefined otherwise, and nothing is consumed.
   * Spares a small call the promise chain of read()/readAll().
   */
  takeWholeRequest(): Uint8Array | undefined {
    if (this.carry !== undefined || !this.call.requestArrived()) return undefined;
    const chunks: Uint8Array[] = [];
    let total = 0;
    // Bounded by the read queue (READ_QUEUE_PACKETS_MAX packets): the whole request is in it.
    for (let chunk = this.call.read(); chunk !== undefined; chunk = this.call.read()) {
      chunks.push(chunk);
      total += chunk.byteLength;
    }
    return concat(chunks, total);
  }

  /**
   * Ends our side with `data` without waiting when the call may write now
   * (a server whose request was read whole); false when it must wait: use end().
   */
  endAtOnce(data: Uint8Array): boolean {
    if (!this.call.canWrite()) return false;
    if (data.byteLength > 0) this.call.write(data);
    this.call.end();
    return true;
  }

  /** rxgen calls start with a 4-byte opcode. */
  async readOpcode(): Promise<number> {
    const bytes = await this.readExactly(OPCODE_SIZE);
    return decodeOpcode(bytes);
  }

  async write(data: Uint8Array): Promise<void> {
    await this.waitUntilWritable();
    if (!this.call.write(data)) {
      while (!this.call.writable()) {
        this.throwIfFailed();
        await this.wait();
      }
    }
  }

  /** Finishes our side of the call (sends LAST_PACKET), optionally with final data. */
  async end(data?: Uint8Array): Promise<void> {
    if (data !== undefined && data.byteLength > 0) await this.write(data);
    await this.waitUntilWritable();
    this.call.end();
  }

  /**
   * A server writes its reply only after the whole request arrived; like Rx,
   * request data the handler did not read is discarded when it starts replying.
   */
  private async waitUntilWritable(): Promise<void> {
    while (!this.call.canWrite()) {
      this.throwIfFailed();
      if (this.call.phase === 'complete') throw new RxError('ERR_RX_CLOSED', 'call already complete');
      if (!this.call.link.isClient && this.call.read() !== undefined) continue;
      await this.wait();
    }
  }

  abort(code: number, reason = 'aborted by the application'): void {
    this.call.abort(code, reason);
  }
}

export function concat(chunks: readonly Uint8Array[], total = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0)): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
