/**
 * Closing a server: a drain answers the calls already running while new
 * calls and new connections are aborted SERVER_BUSY; and SO_REUSEPORT lets
 * several servers (processes) bind one UDP port; a prepared server starts
 * its channel workers before it takes its port.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { RxClient, RxErrorCode, RxServer } from '../dist/index.js';
import { BENCH_PACKAGE } from '../dist/generated/bench.js';

const serviceModule = new URL('../dist/bench/bench-service.js', import.meta.url);
const Null = BENCH_PACKAGE.procedures[0]!;
const Sleep = BENCH_PACKAGE.procedures[4]!;

describe('close({ drainMs })', () => {
  it('answers the running call, refuses new calls and connections SERVER_BUSY, then closes', async () => {
    const server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 1 });
    const client = await RxClient.open();
    try {
      const connection = client.connect('127.0.0.1', server.port, 42);
      await connection.invoke(Null, {});
      const running = connection.invoke(Sleep, { milliseconds: 600 });
      await new Promise((resolve) => setTimeout(resolve, 150));
      const closing = server.close({ drainMs: 5_000 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const newCall = await connection.invoke(Null, {}).catch((error: unknown) => error);
      const newConnection = await client.connect('127.0.0.1', server.port, 42).invoke(Null, {}).catch((error: unknown) => error);
      expect(newCall).toMatchObject({ code: 'ERR_RX_CALL_ABORTED', abortCode: RxErrorCode.SERVER_BUSY });
      expect(newConnection).toMatchObject({ code: 'ERR_RX_CALL_ABORTED', abortCode: RxErrorCode.SERVER_BUSY });
      await expect(running).resolves.toEqual({});
      await expect(closing).resolves.toEqual({ unfinishedHandlers: 0 });
    } finally {
      await client.close();
    }
  });

  it('stops waiting at drainMs and reports the handlers it had to terminate', async () => {
    const server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 1 });
    const client = await RxClient.open({ call: { idleDeadMs: 1_000, keepaliveMs: 100 } });
    try {
      const running = client.connect('127.0.0.1', server.port, 42).invoke(Sleep, { milliseconds: 10_000 }).catch((error: unknown) => error);
      await new Promise((resolve) => setTimeout(resolve, 150));
      const started = performance.now();
      await expect(server.close({ drainMs: 300 })).resolves.toEqual({ unfinishedHandlers: 1 });
      expect(performance.now() - started).toBeGreaterThanOrEqual(290);
      expect(performance.now() - started).toBeLessThan(3_000);
      expect(await running).toMatchObject({ code: 'ERR_RX_CALL_DEAD' });
    } finally {
      await client.close();
    }
  });

  it('rejects a drainMs that is not a whole number of milliseconds', async () => {
    const server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 1 });
    await expect(server.close({ drainMs: -1 })).rejects.toMatchObject({ code: 'ERR_RX_OPTION', message: expect.stringContaining('drainMs') });
    await server.close();
  });
});

describe('reusePort', () => {
  it('lets two servers bind one UDP port with reusePort, and refuses a second bind without it', async () => {
    const first = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 1, reusePort: true, exclusive: true });
    try {
      const second = await RxServer.listen({ serviceModule, address: '127.0.0.1', port: first.port, workers: 1, reusePort: true, exclusive: true });
      expect(second.port).toBe(first.port);
      const client = await RxClient.open();
      try {
        await expect(client.connect('127.0.0.1', first.port, 42).invoke(Null, {})).resolves.toEqual({});
      } finally {
        await client.close();
        await second.close();
      }
      await expect(RxServer.listen({ serviceModule, address: '127.0.0.1', port: first.port, workers: 1 })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    } finally {
      await first.close();
    }
  });

  it('names the field when reusePort is not a boolean', async () => {
    await expect(RxServer.listen({ serviceModule, reusePort: 'yes' as unknown as boolean })).rejects.toMatchObject({
      code: 'ERR_RX_OPTION',
      message: expect.stringContaining('reusePort'),
    });
  });
});

describe('prepare() then bind(): a warm standby', () => {
  it('starts its channel workers while another socket holds the port, then takes the port once it is free', async () => {
    const holder = dgram.createSocket('udp4');
    holder.bind(0, '127.0.0.1');
    await once(holder, 'listening');
    const port = holder.address().port;
    const standby = await RxServer.prepare({ serviceModule, address: '127.0.0.1', port, workers: 1 });
    const client = await RxClient.open();
    try {
      expect(() => standby.port).toThrow();
      expect((await standby.stats()).workers).toBe(1);
      await new Promise<void>((resolve) => holder.close(resolve));
      await expect(standby.bind()).resolves.toEqual({ address: '127.0.0.1', port });
      await expect(client.connect('127.0.0.1', port, 42).invoke(Null, {})).resolves.toEqual({});
    } finally {
      await client.close();
      await standby.close();
    }
  });

  it('closes a prepared server that never bound', async () => {
    const standby = await RxServer.prepare({ serviceModule, address: '127.0.0.1', workers: 1 });
    await expect(standby.close({ drainMs: 100 })).resolves.toEqual({ unfinishedHandlers: 0 });
  });
});
