/**
 * Where one of the command's streams goes: forwarded to a destination (process.stdout, a test's
 * stream, or nowhere) with backpressure, and optionally captured up to a bound. Created by the
 * reader of one stream (an OutputFollower, or the in-lab runner), written from the main thread
 * only, closed by that reader once the stream has ended.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Writable } from 'node:stream';

// A captured stream longer than this keeps only its first bytes (run files keep all of it).
export const capturedBytesMax = 16 * 1024 * 1024;

export class OutputSink {
  readonly #destination: Writable | null;
  readonly #captured: Buffer[] | null;
  #capturedBytes = 0;
  #closed = false;
  // Set when the destination errors (e.g. EPIPE after `| head`): the stream is still read to the end,
  // so the run completes and its exit status is returned, but nothing more is written.
  #destinationFailed = false;
  readonly #onDestinationError = (): void => {
    this.#destinationFailed = true;
  };

  constructor(destination: Writable | null, capture: boolean) {
    this.#destination = destination;
    this.#captured = capture ? [] : null;
    this.#destination?.on('error', this.#onDestinationError);
  }

  async write(chunk: Buffer): Promise<void> {
    assert(!this.#closed, 'no writes after close');
    if (this.#captured !== null && this.#capturedBytes < capturedBytesMax) {
      const kept = chunk.subarray(0, capturedBytesMax - this.#capturedBytes);
      this.#captured.push(kept);
      this.#capturedBytes += kept.length;
    }
    assert(this.#capturedBytes <= capturedBytesMax);
    if (this.#destination === null || this.#destinationFailed) return;
    if (this.#destination.write(chunk)) return;
    try {
      // 'close' too: a destination destroyed while full (a closed pipe) never drains.
      await Promise.race([once(this.#destination, 'drain'), once(this.#destination, 'close')]);
    } catch {
      this.#destinationFailed = true;
    }
  }

  /** Stops listening to the destination and returns the captured text (empty when not capturing). */
  close(): string {
    assert(!this.#closed, 'a sink is closed once');
    this.#closed = true;
    this.#destination?.off('error', this.#onDestinationError);
    return this.#captured === null ? '' : Buffer.concat(this.#captured).toString('utf8');
  }
}
