/**
 * Follows one output file of the run directory (the command's stdout or stderr, written by the
 * guest through 9p) and forwards its bytes as they appear. Files rather than a virtio-serial port:
 * each guest write reaches the host file before write() returns, so nothing is lost when the guest
 * powers off, and the command sees a plain file, not a tty. Created and finished by one LabRun,
 * main thread only; `finish` reads to the end once QEMU has exited and closes the file.
 */
import assert from 'node:assert/strict';
import { open, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { once } from 'node:events';

// 50 ms: output appears as promptly as a person notices, at a cost of 20 reads a second.
const pollIntervalMs = 50;
// One read's size; a burst larger than this is drained by consecutive reads in the same pass.
const readChunkBytes = 64 * 1024;
// A captured stream longer than this keeps only its first bytes (the files keep all of it).
export const capturedBytesMax = 16 * 1024 * 1024;

export class OutputFollower {
  readonly #path: string;
  readonly #destination: Writable | null;
  readonly #captured: Buffer[] | null;
  #capturedBytes = 0;
  #file: FileHandle | null = null;
  #position = 0;
  #timer: NodeJS.Timeout | null = null;
  #pass: Promise<void> = Promise.resolve();
  #finished = false;
  // Set when the destination errors (e.g. EPIPE after `| head`): the file is still read to the end, so the
  // run completes and its exit status is returned, but nothing more is written.
  #destinationFailed = false;

  constructor(path: string, destination: Writable | null, capture: boolean) {
    this.#path = path;
    this.#destination = destination;
    this.#captured = capture ? [] : null;
  }

  start(): void {
    this.#destination?.on('error', this.#onDestinationError);
    this.#schedule();
  }

  /** Reads what is left, closes the file and returns the captured text (empty when not capturing). */
  async finish(): Promise<string> {
    assert(!this.#finished, 'an output follower is finished once');
    this.#finished = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    await this.#pass;
    await this.#drain();
    await this.#file?.close();
    this.#file = null;
    this.#destination?.off('error', this.#onDestinationError);
    return this.#captured === null ? '' : Buffer.concat(this.#captured).toString('utf8');
  }

  readonly #onDestinationError = (): void => {
    this.#destinationFailed = true;
  };

  #schedule(): void {
    this.#timer = setTimeout(() => {
      this.#pass = this.#drain().then(
        () => { if (!this.#finished) this.#schedule(); },
        () => { if (!this.#finished) this.#schedule(); },
      );
    }, pollIntervalMs);
    this.#timer.unref();
  }

  async #drain(): Promise<void> {
    this.#file ??= await open(this.#path, 'r');
    const buffer = Buffer.allocUnsafe(readChunkBytes);
    for (;;) {
      const { bytesRead } = await this.#file.read(buffer, 0, readChunkBytes, this.#position);
      if (bytesRead === 0) return;
      this.#position += bytesRead;
      assert(this.#capturedBytes <= capturedBytesMax);
      await this.#forward(Buffer.from(buffer.subarray(0, bytesRead)));
    }
  }

  async #forward(chunk: Buffer): Promise<void> {
    if (this.#captured !== null && this.#capturedBytes < capturedBytesMax) {
      const kept = chunk.subarray(0, capturedBytesMax - this.#capturedBytes);
      this.#captured.push(kept);
      this.#capturedBytes += kept.length;
    }
    if (this.#destination === null || this.#destinationFailed) return;
    if (this.#destination.write(chunk)) return;
    try {
      // 'close' too: a destination destroyed while full (a closed pipe) never drains.
      await Promise.race([once(this.#destination, 'drain'), once(this.#destination, 'close')]);
    } catch {
      this.#destinationFailed = true;
    }
  }
}
