import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RxClient, RxErrorCode, RxServer, type ClientConnection } from '../dist/index.js';
import { BENCH_PACKAGE } from '../dist/generated/bench.js';

const serviceModule = new URL('../dist/bench/bench-service.js', import.meta.url);
const [Null, Echo, Send, Receive] = BENCH_PACKAGE.procedures;

describe.each([
  { workers: 2, host: 'channel workers' },
  { workers: 0, host: 'the routing thread (workers: 0)' },
])('typed calls travel from our client through the endpoint to channels on $host and back', ({ workers }) => {
  let server: RxServer;
  let client: RxClient;
  let connection: ClientConnection;
  beforeAll(async () => {
    server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers });
    client = await RxClient.open();
    connection = client.connect('127.0.0.1', server.port, 42);
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it('answers Null with empty results', async () => {
    expect(await connection.invoke(Null, {})).toEqual({});
  });

  it('echoes a multi-packet argument byte for byte', async () => {
    const request = new Uint8Array(20_000).map((_, index) => (index * 7) & 0xff);
    const { reply } = await connection.invoke(Echo, { request });
    expect(Buffer.from(reply).equals(Buffer.from(request))).toBe(true);
  });

  it('streams 1 MiB to the server in a split call and gets the count back', async () => {
    const call = await connection.startSplit(Send, { length: 1 << 20 });
    const chunk = new Uint8Array(60_000).fill(3);
    for (let sent = 0; sent < 1 << 20; sent += chunk.byteLength) await call.write(chunk.subarray(0, Math.min(chunk.byteLength, (1 << 20) - sent)));
    expect(await call.finish()).toEqual({ received: 1 << 20 });
  });

  it('streams 1 MiB from the server in a split call', async () => {
    const call = await connection.startSplit(Receive, { length: 1 << 20 });
    let received = 0;
    for (let chunk = await call.read(); chunk !== undefined; chunk = await call.read()) {
      expect(chunk.every((byte) => byte === 0x5a)).toBe(true);
      received += chunk.byteLength;
    }
    expect(received).toBe(1 << 20);
    expect(await call.finish()).toEqual({});
  });

  it('runs calls on all four channels of a connection at once', async () => {
    const before = await server.stats();
    const results = await Promise.all([0, 1, 2, 3].map((channel) => connection.call(Uint8Array.of(0, 0, 0, 1), { channel })));
    expect(results.map((reply) => reply.byteLength)).toEqual([0, 0, 0, 0]);
    const after = await server.stats();
    expect(after.counters.callsPerChannel.map((count, index) => count - before.counters.callsPerChannel[index]!)).toEqual([1, 1, 1, 1]);
    // A server call occupies its channel until the client's final ACK (sent after a delay) arrives.
    await vi.waitFor(async () => {
      const ended = await server.stats();
      ended.counters.channelBusyMs.forEach((busyMs, index) => expect(busyMs).toBeGreaterThan(before.counters.channelBusyMs[index]!));
    });
    expect(after.workers).toBe(workers);
    expect(after.counters.rttSamples).toBeGreaterThan(0);
    expect(after.counters.rttMinMs).toBeLessThanOrEqual(after.counters.rttMaxMs);
    expect(after.activeCallsPerWorker).toHaveLength(Math.max(1, workers));
  });

  it('serves a split procedure whose whole request fits one packet', async () => {
    // The handler starts with the request whole: the bytes after the arguments must still stream to it.
    const call = await connection.startSplit(Send, { length: 100 });
    await call.write(new Uint8Array(100).fill(9));
    expect(await call.finish()).toEqual({ received: 100 });
  });

  it('aborts a request shorter than its opcode with RXGEN_SS_UNMARSHAL', async () => {
    await expect(connection.call(Uint8Array.of(0, 1))).rejects.toMatchObject({ code: 'ERR_RX_CALL_ABORTED', abortCode: RxErrorCode.RXGEN_SS_UNMARSHAL });
  });

  it('aborts an unknown opcode with RXGEN_OPCODE', async () => {
    await expect(connection.call(Uint8Array.of(0, 0, 0x7f, 0x7f))).rejects.toMatchObject({ code: 'ERR_RX_CALL_ABORTED', abortCode: -455 });
  });

  it('fails calls to a service the server does not run with the connection ABORT code', async () => {
    const unknown = client.connect('127.0.0.1', server.port, 999);
    await expect(unknown.call(Uint8Array.of(0, 0, 0, 1))).rejects.toMatchObject({ code: 'ERR_RX_CALL_ABORTED', abortCode: -2 });
    await expect(unknown.call(Uint8Array.of(0, 0, 0, 1))).rejects.toMatchObject({ abortCode: -2 });
  });

  it('serves IPv6 peers', async () => {
    const server6 = await RxServer.listen({ serviceModule, address: '::1', workers: 1 });
    const client6 = await RxClient.open({ address: '::' });
    try {
      const connection6 = client6.connect('::1', server6.port, 42);
      const { reply } = await connection6.invoke(Echo, { request: Uint8Array.of(1, 2, 3) });
      expect([...reply]).toEqual([1, 2, 3]);
    } finally {
      await client6.close();
      await server6.close();
    }
  });
});
