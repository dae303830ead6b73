import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceClient } from '@roce-rpc/server';
import text from '../src/text-service.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe('a consumer package serves its own service with @roce-rpc/server', () => {
  const ports = { tcp: 0, udp: 0 };
  let child: ReturnType<typeof spawn>;
  let exit: Promise<number | null>;

  beforeAll(async () => {
    ports.tcp = await freePort();
    ports.udp = await freePort();
    child = spawn(process.execPath, [MAIN, '--processes', '2', '--threads', '1', '--tcp-port', String(ports.tcp), '--udp-port', String(ports.udp), '--metrics-port', '0'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    exit = new Promise((resolve) => child.once('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      let output = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('"msg":"listening"')) resolve();
      });
      void exit.then((code) => reject(new Error(`exited ${code}`)));
    });
  });
  afterAll(async () => {
    child?.kill('SIGTERM');
    await exit;
  });

  for (const transport of ['tcp', 'udp'] as const) {
    it(`answers its procedures over ${transport}`, async () => {
      const client = await ServiceClient.connect(text, { transport, port: ports[transport] });
      try {
        expect(await client.call('reverse', 'roce-rpc')).toBe('cpr-ecor');
        expect(await client.call('statistics', 'one two\nthree')).toEqual({ characters: 13, words: 3, lines: 2 });
        expect(await client.call('sum', [1, 2, 3, -10])).toBe(-4);
      } finally {
        await client.close();
      }
    });
  }

  it('stops cleanly on SIGTERM', async () => {
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
  });
});
