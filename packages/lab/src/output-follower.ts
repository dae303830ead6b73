/**
 * Follows one output file of the run directory (the command's stdout or stderr, written by the
 * guest through 9p) and hands its bytes to an OutputSink as they appear. Files rather than a
 * virtio-serial port: each guest write reaches the host file before write() returns, so nothing
 * is lost when the guest powers off, and the command sees a plain file, not a tty. Created and
 * finished by one LabRun, main thread only; `finish` reads to the end once QEMU has exited, closes
 * the file and the sink.
 */
import assert from 'node:assert/strict';
import { open, type FileHandle } from 'node:fs/promises';
import type { OutputSink } from './output-sink.js';

// 50 ms: output appears as promptly as a person notices, at a cost of 20 reads a second.
const pollIntervalMs = 50;
// One read's size; a burst larger than this is drained by consecutive reads in the same pass.
const readChunkBytes = 64 * 1024;

export class OutputFollower {
  readonly #path: string;
  readonly #sink: OutputSink;
  #file: FileHandle | null = null;
  #position = 0;
  #timer: NodeJS.Timeout | null = null;
  #pass: Promise<void> = Promise.resolve();
  #finished = false;

  constructor(path: string, sink: OutputSink) {
    this.#path = path;
    this.#sink = sink;
  }

  start(): void {
    this.#schedule();
  }

  /** Reads what is left, closes the file and the sink, and returns the captured text. */
  async finish(): Promise<string> {
    assert(!this.#finished, 'an output follower is finished once');
    this.#finished = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    await this.#pass;
    await this.#drain();
    await this.#file?.close();
    this.#file = null;
    return this.#sink.close();
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      const next = (): void => {
        if (!this.#finished) this.#schedule();
      };
      this.#pass = this.#drain().then(next, next);
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
      await this.#sink.write(Buffer.from(buffer.subarray(0, bytesRead)));
    }
  }
}
