/**
 * Reads the guest's serial console as it arrives from QEMU: splits it into lines, keeps the last
 * ones for error messages, forwards everything to an optional log stream, and reports the lines
 * stage one and two write (`rxe-lab: ...`). Owned by one LabRun, touched on the main thread only.
 */
import assert from 'node:assert/strict';
import type { Writable } from 'node:stream';
import { consoleMarker } from './guest-scripts.js';

// Enough to show a kernel panic's first lines or the set-up step that failed, short enough to read.
export const consoleTailLinesMax = 40;
// A console line longer than this (a runaway message without newline) is cut, so memory stays bounded.
const consoleLineBytesMax = 4096;

export class ConsoleTail {
  readonly #lines: string[] = [];
  #partial = '';
  readonly #log: Writable | null;
  readonly #onMarker: (line: string) => void;

  constructor(log: Writable | null, onMarker: (line: string) => void) {
    this.#log = log;
    this.#onMarker = onMarker;
  }

  push(chunk: Buffer): void {
    this.#log?.write(chunk);
    const text = this.#partial + chunk.toString('utf8');
    const pieces = text.split('\n');
    this.#partial = (pieces.pop() ?? '').slice(-consoleLineBytesMax);
    for (const piece of pieces) this.#addLine(piece);
  }

  /** Adds a line that did not come from the console (QEMU's own stderr), so errors show it in order. */
  note(line: string): void {
    this.#addLine(line);
  }

  /** The last lines, the unterminated one included. */
  lines(): string[] {
    return this.#partial === '' ? [...this.#lines] : [...this.#lines, this.#partial];
  }

  #addLine(raw: string): void {
    const line = raw.replaceAll('\r', '').slice(0, consoleLineBytesMax);
    if (line === '') return;
    this.#lines.push(line);
    if (this.#lines.length > consoleTailLinesMax) this.#lines.shift();
    assert(this.#lines.length <= consoleTailLinesMax);
    if (line.startsWith(consoleMarker.prefix)) this.#onMarker(line);
  }
}
