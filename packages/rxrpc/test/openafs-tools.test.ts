/**
 * Interop with tools no one here wrote: OpenAFS's rxdebug reads our
 * server's version and statistics, and Wireshark's RX dissector (tshark)
 * decodes a capture of our traffic without a malformed packet. Both come from
 * packages scripts/setup installs, and CI runs as root (tshark captures on lo):
 * a missing tool or capture right fails these tests rather than skipping them.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RxClient, RxServer, VERSION_STRING } from '../dist/index.js';
import { BENCH_PACKAGE } from '../dist/generated/bench.js';

const run = promisify(execFile);
const serviceModule = new URL('../dist/bench/bench-service.js', import.meta.url);
const [Null, Echo, , Receive] = BENCH_PACKAGE.procedures;

describe('OpenAFS and Wireshark read our traffic', () => {
  let server: RxServer;
  beforeAll(async () => {
    server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 2 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('rxdebug -version prints our version string', async () => {
    const { stdout } = await run('rxdebug', ['127.0.0.1', String(server.port), '-version'], { timeout: 20_000 });
    expect(stdout).toContain(`AFS version: ${VERSION_STRING}`);
  });

  it('rxdebug -rxstats reports the packets and calls we counted', async () => {
    const client = await RxClient.open();
    const connection = client.connect('127.0.0.1', server.port, 42);
    for (let index = 0; index < 5; index++) await connection.invoke(Null, {});
    await client.close();
    const { stdout } = await run('rxdebug', ['127.0.0.1', String(server.port), '-rxstats', '-noconns'], { timeout: 20_000 });
    const dataRead = Number(/packets read: data (\d+)/.exec(stdout)?.[1]);
    const dataSent = Number(/packets sent: data (\d+)/.exec(stdout)?.[1]);
    expect(dataRead).toBeGreaterThanOrEqual(5);
    expect(dataSent).toBeGreaterThanOrEqual(5);
    expect(stdout).toMatch(/\d+ server connections/);
  });

  it('tshark dissects a capture of our calls as RX with no malformed packet', async () => {
    const directory = mkdtempSync(path.join(os.tmpdir(), 'roce-rpc-capture-'));
    const capture = path.join(directory, 'rx.pcapng');
    try {
      const tshark = spawn('tshark', ['-i', 'lo', '-f', `udp port ${server.port}`, '-w', capture], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      await new Promise<void>((resolve, reject) => {
        tshark.stderr.on('data', (text: Buffer) => {
          stderr += text.toString();
          if (stderr.includes('Capture started')) resolve();
        });
        tshark.once('exit', (code) => reject(new Error(`tshark exited ${code}: ${stderr}`)));
      });
      // The capture filter is installed just after tshark says so: leave it a moment.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const client = await RxClient.open();
      const connection = client.connect('127.0.0.1', server.port, 42);
      await connection.invoke(Null, {});
      await connection.invoke(Echo, { request: new Uint8Array(6000).fill(1) });
      const bulk = await connection.startSplit(Receive, { length: 200_000 });
      while ((await bulk.read()) !== undefined);
      await bulk.finish();
      await connection.call(Uint8Array.of(0, 0, 0x7f, 0x7f)).catch(() => undefined);
      await client.close();
      await new Promise((resolve) => setTimeout(resolve, 300));
      const exited = new Promise((resolve) => tshark.once('exit', resolve));
      tshark.kill('SIGINT');
      await exited;
      const decodeAs = ['-d', `udp.port==${server.port},rx`];
      const { stdout: verbose } = await run('tshark', ['-r', capture, '-V', ...decodeAs], { maxBuffer: 64 << 20 });
      const { stdout: summary } = await run('tshark', ['-r', capture, ...decodeAs], { maxBuffer: 64 << 20 });
      expect(verbose).toContain('RX Protocol');
      expect(verbose).not.toMatch(/malformed/i);
      expect(summary).toMatch(/ACK Ping Response/);
      expect(summary).toMatch(/ABORT/);
      // 200 kB of reply data: at least 36 datagrams even when packed four to a jumbogram.
      expect(summary.split('\n').filter((line) => /Request|Reply/.test(line)).length).toBeGreaterThan(36);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
