/**
 * Peer processes for the lab tests: each peer is a separate Node process
 * (`node peers/<name>.ts`), and the tests talk to it over rxe and read its
 * stdout line by line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface Peer {
  readonly child: ChildProcess;
  /** Resolves with the first stdout line matching `pattern` (seen before or after the call). */
  line(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or the signal's name). */
  readonly exited: Promise<number | string>;
  readonly output: string[];
}

/** Starts `command` (a peer script name, or an absolute program) with `args`. */
export function startPeer(command: string, args: readonly string[], env: Record<string, string> = {}): Peer {
  const isScript = !command.startsWith('/') && command.endsWith('.ts');
  const program = isScript ? process.execPath : command;
  const argv = isScript ? [fileURLToPath(new URL(`./peers/${command}`, import.meta.url)), ...args] : [...args];
  const child = spawn(program, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const output: string[] = [];
  const listeners = new Set<(line: string) => void>();
  const collect = (line: string) => {
    output.push(line);
    for (const listener of listeners) listener(line);
  };
  createInterface({ input: child.stdout! }).on('line', collect);
  createInterface({ input: child.stderr! }).on('line', (line) => collect(`stderr: ${line}`));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    output,
    exited,
    line(pattern, timeoutMs = 60_000) {
      const seen = output.map((line) => line.match(pattern)).find((match) => match !== null);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; output:\n${output.join('\n')}`));
        }, timeoutMs);
        const check = (line: string) => {
          const match = line.match(pattern);
          if (!match) return;
          clearTimeout(timer);
          listeners.delete(check);
          resolve(match);
        };
        listeners.add(check);
        void exited.then(() => {
          if (!listeners.has(check)) return;
          clearTimeout(timer);
          listeners.delete(check);
          reject(new Error(`peer exited before a line matching ${pattern}; output:\n${output.join('\n')}`));
        });
      });
    },
  };
}
