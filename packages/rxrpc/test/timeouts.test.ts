/**
 * Call timeouts: idle dead (nothing heard), keepalive pings holding a slow
 * call alive, and the hard dead time aborting a call that runs too long.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RxClient, RxServer } from '../dist/index.js';
import { BENCH_PACKAGE } from '../dist/generated/bench.js';

const serviceModule = new URL('../dist/bench/bench-service.js', import.meta.url);
const Sleep = BENCH_PACKAGE.procedures[4]!;

describe('call timeouts', () => {
  let server: RxServer;
  beforeAll(async () => {
    server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 1, call: { hardDeadMs: 400 } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('declares a call dead when the peer never answers', async () => {
    const silent = dgram.createSocket('udp4');
    silent.bind(0, '127.0.0.1');
    await once(silent, 'listening');
    const client = await RxClient.open({ call: { idleDeadMs: 300, keepaliveMs: 100 } });
    try {
      const started = performance.now();
      const failure = await client.connect('127.0.0.1', silent.address().port, 42).call(Uint8Array.of(0, 0, 0, 1)).catch((error: unknown) => error);
      expect(failure).toMatchObject({ code: 'ERR_RX_CALL_DEAD', abortCode: -1 });
      expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    } finally {
      await client.close();
      silent.close();
    }
  });

  it('keeps a slow call alive with keepalive pings beyond the idle dead time', async () => {
    // The call outlasts the idle dead time 2.5 times over; the dead time is wide enough that a
    // loaded machine's scheduling gaps (hundreds of ms at load 8-9 seen once) do not kill it.
    // Its own server: the shared one's hard dead time (400 ms) would end the call first.
    const patient = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 1 });
    const client = await RxClient.open({ call: { idleDeadMs: 600, keepaliveMs: 100 } });
    try {
      await expect(client.connect('127.0.0.1', patient.port, 42).invoke(Sleep, { milliseconds: 1_500 })).resolves.toEqual({});
    } finally {
      await client.close();
      await patient.close();
    }
  });

  it('aborts a call that outlives the server hard dead time with RX_CALL_TIMEOUT', async () => {
    const client = await RxClient.open();
    try {
      const failure = await client.connect('127.0.0.1', server.port, 42).invoke(Sleep, { milliseconds: 2_000 }).catch((error: unknown) => error);
      expect(failure).toMatchObject({ code: 'ERR_RX_CALL_ABORTED', abortCode: -3 });
    } finally {
      await client.close();
    }
  });
});
