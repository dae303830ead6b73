/**
 * A channel worker that dies after start-up (an exception outside any
 * handler, process.exit() in a service): the server aborts the calls on its
 * channels at once with RX_CALL_DEAD (-1), replaces it, and serves on — the
 * other worker's calls are untouched and the dead worker's channels take new
 * calls on the replacement.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeAbortCode, HEADER_SIZE, PacketType, RxClient, RxServer, type ClientConnection } from '../dist/index.js';
import { DYING_WORKER_SERVICE_ID } from './fixtures/dying-worker-service.js';
import { RawPeer } from './helpers/raw-peer.js';

const serviceModule = new URL('./fixtures/dying-worker-service.ts', import.meta.url);
const request = (opcode: number): Uint8Array => Uint8Array.of(0, 0, 0, opcode);
const threadOf = (reply: Uint8Array): number => new DataView(reply.buffer, reply.byteOffset, reply.byteLength).getUint32(0);
const [WHOAMI, THROW, EXIT, SLOW] = [1, 2, 3, 4];

describe.each([
  { how: 'an exception thrown outside any handler', opcode: THROW },
  { how: 'process.exit() in a service', opcode: EXIT },
])('a channel worker killed by $how', ({ opcode }) => {
  let server: RxServer;
  let client: RxClient;
  let connection: ClientConnection;
  beforeEach(async () => {
    // Two workers: channels 0 and 2 of a connection share one, 1 and 3 the other.
    server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 2 });
    client = await RxClient.open();
    connection = client.connect('127.0.0.1', server.port, DYING_WORKER_SERVICE_ID);
  });
  afterEach(async () => {
    await client?.close();
    await server?.close();
  });

  it('aborts its calls at once, leaves the other worker alone, and is replaced for the next calls', async () => {
    const threadBefore = threadOf(await connection.call(request(WHOAMI), { channel: 0 }));
    const otherThread = threadOf(await connection.call(request(WHOAMI), { channel: 1 }));
    const before = await server.stats();
    // Calls in progress when the worker dies: one on its other channel, one on the surviving worker.
    const neighbour = connection.call(request(SLOW), { channel: 2 }).catch((error: unknown) => error);
    const survivor = connection.call(request(SLOW), { channel: 1 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = performance.now();
    const killer = await connection.call(request(opcode), { channel: 0 }).catch((error: unknown) => error);
    const abortedAfterMs = performance.now() - started;
    expect(killer).toMatchObject({ code: 'ERR_RX_CALL_ABORTED', abortCode: -1 });
    // Well before any timeout (idle dead is 60 s): the ABORT comes when the worker's exit is seen.
    expect(abortedAfterMs).toBeLessThan(2_000);
    expect(await neighbour).toMatchObject({ code: 'ERR_RX_CALL_ABORTED', abortCode: -1 });
    expect(threadOf(await survivor)).toBe(otherThread);

    // The same channels take new calls, on a new thread with fresh channel state.
    const threadAfter = threadOf(await connection.call(request(WHOAMI), { channel: 0 }));
    expect(threadAfter).not.toBe(threadBefore);
    expect(threadOf(await connection.call(request(WHOAMI), { channel: 2 }))).toBe(threadAfter);
    expect(threadOf(await connection.call(request(WHOAMI), { channel: 1 }))).toBe(otherThread);
    const after = await server.stats();
    expect(after.counters.workerRestarts - before.counters.workerRestarts).toBe(1);
    expect(after.counters.callsAbortedWorkerDied - before.counters.callsAbortedWorkerDied).toBe(2);
    expect(after.activeCallsPerWorker).toHaveLength(2);
    // The dead worker's counts are kept: counters never go backwards.
    expect(after.counters.callsStarted).toBeGreaterThanOrEqual(before.counters.callsStarted + 3);
  });
});

describe('the call a dead worker took with it', () => {
  it('stays aborted: its retransmitted DATA gets the ABORT again and never runs on the replacement', async () => {
    const server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 2 });
    const peer = await RawPeer.open();
    try {
      const call = { serviceId: DYING_WORKER_SERVICE_ID, cid: 0x100, epoch: 0x5150 };
      const isAbortOf = (callNumber: number) => (header: { type: number; callNumber: number }) => header.type === PacketType.ABORT && header.callNumber === callNumber;
      peer.send('127.0.0.1', server.port, { ...call, callNumber: 1 }, request(EXIT));
      const abort = await peer.expect(isAbortOf(1));
      expect(decodeAbortCode(abort.bytes.subarray(HEADER_SIZE))).toBe(-1);
      // Long enough for the replacement to be up: a DATA reaching it would start the call and kill it too.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const abortsBefore = peer.received.filter((packet) => isAbortOf(1)(packet.header)).length;
      peer.send('127.0.0.1', server.port, { ...call, callNumber: 1 }, request(EXIT));
      await peer.expect(() => peer.received.filter((packet) => isAbortOf(1)(packet.header)).length > abortsBefore);
      peer.send('127.0.0.1', server.port, { ...call, callNumber: 2 }, request(WHOAMI));
      const reply = await peer.expect((header) => header.type === PacketType.DATA && header.callNumber === 2, 5_000);
      expect(reply.bytes.byteLength).toBe(HEADER_SIZE + 4);
      const stats = await server.stats();
      expect(stats.counters.workerRestarts).toBe(1);
      expect(stats.counters.callsAbortedWorkerDied).toBe(1);
    } finally {
      await peer.close();
      await server.close();
    }
  });
});
