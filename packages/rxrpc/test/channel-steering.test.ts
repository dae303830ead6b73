/**
 * Kernel steering of the server's port to its channel workers: the classic
 * BPF program queues every call packet on the socket of the worker that
 * hosts its channel (the same placement the routing thread uses), and
 * everything else on the routing thread's socket; a known connection's call
 * packets never pass through the routing thread; connection-level packets
 * are still handled there with channel workers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AckReason, PacketFlag, PacketType, RxClient, RxServer, decodeAck, encodeAbortBody, encodeAckBody, HEADER_SIZE, type PacketHeader } from '../dist/index.js';
import { BENCH_PACKAGE } from '../dist/generated/bench.js';
import { NativeDatagramSocket } from '../dist/endpoint/native-datagram-socket.js';
import { channelWorker, steeringProgram } from '../dist/worker/channel-placement.js';
import { DYING_WORKER_SERVICE_ID } from './fixtures/dying-worker-service.js';
import { RawPeer } from './helpers/raw-peer.js';

const WHOAMI_OPCODE = 1;

function words(...values: number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  values.forEach((value, index) => new DataView(bytes.buffer).setUint32(index * 4, value));
  return bytes;
}

describe('the steering program', () => {
  for (const [bind, host, family] of [
    ['127.0.0.1', '127.0.0.1', 'udp4'],
    ['::', '::1', 'udp6'],
  ] as const) {
    it(`queues each call packet on its channel's worker socket and the rest on the routing socket (${bind})`, async () => {
      const workers = 3;
      const received: string[][] = Array.from({ length: workers + 1 }, () => []);
      const label = (datagram: Uint8Array): string => {
        if (datagram.byteLength < HEADER_SIZE) return `runt ${datagram.byteLength}`;
        const view = new DataView(datagram.buffer, datagram.byteOffset);
        return `cid ${view.getUint32(4)} call ${view.getUint32(8)} type ${datagram[20]} flags ${datagram[21]}`;
      };
      const routing = NativeDatagramSocket.open(bind, 0, false, 1 << 20, (datagram) => void received[0]!.push(label(datagram)), {
        program: steeringProgram(workers),
        members: workers,
      });
      const members = Array.from({ length: workers }, (_, index) =>
        NativeDatagramSocket.adopt(routing.duplicateDescriptor(1 + index), (datagram) => void received[1 + index]!.push(label(datagram))),
      );
      const peer = await RawPeer.open(family);
      try {
        const expected: string[][] = Array.from({ length: workers + 1 }, () => []);
        const send = (header: Partial<PacketHeader>, socket: number): void => {
          peer.send(host, routing.port, header);
          const full = { cid: 0x100, callNumber: 1, type: PacketType.DATA, flags: PacketFlag.CLIENT_INITIATED | PacketFlag.LAST_PACKET, ...header };
          expected[socket]!.push(`cid ${full.cid} call ${full.callNumber} type ${full.type} flags ${full.flags}`);
        };
        for (const connectionCid of [0x100, 0x104, 0x108, 0xfffffffc, 0x12345678 & ~3]) {
          for (let channel = 0; channel < 4; channel++) {
            const cid = (connectionCid | channel) >>> 0;
            const worker = 1 + channelWorker(connectionCid, channel, workers);
            for (const type of [PacketType.DATA, PacketType.ACK, PacketType.BUSY, PacketType.ABORT, PacketType.ACKALL]) send({ cid, type }, worker);
            // Connection-level (call 0), server-initiated, and non-call types go to the routing thread.
            send({ cid, callNumber: 0, type: PacketType.ACK, flags: PacketFlag.CLIENT_INITIATED | PacketFlag.REQUEST_ACK }, 0);
            send({ cid, flags: 0 }, 0);
            for (const type of [PacketType.CHALLENGE, PacketType.DEBUG, PacketType.VERSION, 0, 200]) send({ cid, type }, 0);
          }
        }
        peer.socket.send(new Uint8Array(27).fill(1), routing.port, host);
        expected[0]!.push('runt 27');
        await expect.poll(() => received.map((list) => list.length), { timeout: 3000 }).toEqual(expected.map((list) => list.length));
        expect(received).toEqual(expected);
        // Both workers' shares are used: placement spreads connections and channels.
        for (const list of received) expect(list.length).toBeGreaterThan(0);
      } finally {
        await peer.close();
        for (const member of members) member.close();
        routing.close();
      }
    });
  }
  it('refuses a program the kernel rejects with an error naming the attach (what the server falls back on)', () => {
    // One load and no return: the kernel's checker refuses it.
    const noReturn = new Uint32Array([0x80, 0]);
    expect(() => NativeDatagramSocket.open('127.0.0.1', 0, false, 1 << 16, () => undefined, { program: noReturn, members: 1 })).toThrow(/SO_ATTACH_REUSEPORT_CBPF/);
  });
});

describe('a server with channel workers on a steered port', () => {
  let server: RxServer;
  let peer: RawPeer;
  let epoch = 0x5000;
  const closed: number[] = [];

  beforeAll(async () => {
    server = await RxServer.listen({ serviceModule: new URL('./fixtures/dying-worker-service.ts', import.meta.url), address: '127.0.0.1', workers: 2 });
    server.onConnection((info) => () => void closed.push(info.epoch));
    peer = await RawPeer.open();
  });

  afterAll(async () => {
    await peer.close();
    await server.close();
  });

  /** The routing thread's own counters: what it read itself. */
  const routingDataRead = (): number => (server as unknown as { endpoint: { counters: { packetsRead: number[] } } }).endpoint.counters.packetsRead[PacketType.DATA - 1]!;

  /** Calls Whoami on every channel of connection `cid` as call `callNumber`; the replying thread per channel. */
  async function whoamiPerChannel(connectionEpoch: number, cid: number, callNumber: number): Promise<number[]> {
    const threads: number[] = [];
    for (let channel = 0; channel < 4; channel++) {
      peer.send('127.0.0.1', server.port, { epoch: connectionEpoch, cid: cid | channel, callNumber, serviceId: DYING_WORKER_SERVICE_ID }, words(WHOAMI_OPCODE));
      const reply = await peer.expect((header) => header.epoch === connectionEpoch && header.cid === (cid | channel) && header.callNumber === callNumber && header.type === PacketType.DATA);
      threads.push(new DataView(reply.bytes.buffer, reply.bytes.byteOffset + HEADER_SIZE).getUint32(0));
    }
    return threads;
  }

  it("runs each channel's calls on the worker the placement names, and the routing thread reads none of a known connection's call packets", async () => {
    const connectionEpoch = epoch++;
    const first = await whoamiPerChannel(connectionEpoch, 0x100, 1);
    // cid 0x100: channels 0, 2 on worker 0; 1, 3 on worker 1.
    expect(first[0]).toBe(first[2]);
    expect(first[1]).toBe(first[3]);
    expect(first[0]).not.toBe(first[1]);
    const before = routingDataRead();
    const second = await whoamiPerChannel(connectionEpoch, 0x100, 2);
    expect(second).toEqual(first);
    // cid 0x104 starts one worker further: its channel 0 is where 0x100's channel 1 is.
    await whoamiPerChannel(connectionEpoch, 0x104, 1);
    const before104 = routingDataRead();
    const third = await whoamiPerChannel(connectionEpoch, 0x104, 2);
    expect(third).toEqual([first[1], first[0], first[1], first[0]]);
    expect(routingDataRead() - before104).toBe(0);
    // Only the new connection's first datagrams went through the routing thread.
    expect(routingDataRead() - before).toBeLessThanOrEqual(4);
    const stats = await server.stats();
    expect(stats.counters.callsFailed).toBe(0);
    expect(stats.counters.busyPacketsSent).toBe(0);
  });

  it('answers every call of a burst of back-to-back calls on 20 new connections, whose first datagrams go through the routing thread', async () => {
    // Each call completes the previous one on its channel only if the channel sees them in
    // order (a later call first would make the earlier one stale and leave it unanswered).
    const burst = Array.from({ length: 20 }, () => epoch++);
    for (const connectionEpoch of burst) {
      for (let callNumber = 1; callNumber <= 4; callNumber++) {
        peer.send('127.0.0.1', server.port, { epoch: connectionEpoch, cid: 0x301, callNumber, serviceId: DYING_WORKER_SERVICE_ID }, words(WHOAMI_OPCODE));
      }
    }
    for (const connectionEpoch of burst) {
      for (let callNumber = 1; callNumber <= 4; callNumber++) {
        await peer.expect((header) => header.epoch === connectionEpoch && header.callNumber === callNumber && header.type === PacketType.DATA);
      }
    }
    const stats = await server.stats();
    expect(stats.counters.busyPacketsSent).toBe(0);
    expect(stats.counters.callsFailed).toBe(0);
  });

  it('still answers connection pings and ends a connection on its ABORT on the routing thread', async () => {
    const connectionEpoch = epoch++;
    await whoamiPerChannel(connectionEpoch, 0x200, 1);
    const ping = encodeAckBody({
      bufferSpace: 0,
      maxSkew: 0,
      firstPacket: 0,
      previousPacket: 0,
      serial: 0,
      reason: AckReason.PING,
      acks: new Uint8Array(0),
      trailer: { maxMTU: 1444, ifMTU: 1444, rwind: 32, maxDgramPackets: 1 },
    });
    peer.send('127.0.0.1', server.port, { epoch: connectionEpoch, cid: 0x200, callNumber: 0, seq: 0, type: PacketType.ACK, flags: PacketFlag.CLIENT_INITIATED | PacketFlag.REQUEST_ACK }, ping);
    const response = await peer.expect((header) => header.epoch === connectionEpoch && header.callNumber === 0 && header.type === PacketType.ACK);
    expect(decodeAck(response.bytes.subarray(HEADER_SIZE)).reason).toBe(AckReason.PING_RESPONSE);
    const connections = (await server.stats()).connections;
    peer.send('127.0.0.1', server.port, { epoch: connectionEpoch, cid: 0x200, callNumber: 0, seq: 0, type: PacketType.ABORT, flags: PacketFlag.CLIENT_INITIATED }, encodeAbortBody(1));
    await expect.poll(() => closed.includes(connectionEpoch), { timeout: 2000 }).toBe(true);
    expect((await server.stats()).connections).toBe(connections - 1);
    // The workers forgot it too: a new call on it makes a new connection, answered as usual.
    const again = await whoamiPerChannel(connectionEpoch, 0x200, 2);
    expect(again).toHaveLength(4);
    expect((await server.stats()).connections).toBe(connections);
  });
});

describe('idle reaping with steered channel workers', () => {
  it('keeps a connection whose packets only its workers read alive while it calls, and reaps it once idle', async () => {
    const server = await RxServer.listen({ serviceModule: new URL('../dist/bench/bench-service.js', import.meta.url), address: '127.0.0.1', workers: 2, connectionIdleMs: 400 });
    const client = await RxClient.open();
    const closedAt: number[] = [];
    server.onConnection(() => () => void closedAt.push(performance.now()));
    try {
      const connection = client.connect('127.0.0.1', server.port, 42);
      const [Null] = BENCH_PACKAGE.procedures;
      // Three idle periods' worth of calls: the routing thread sees only the first datagram.
      const until = performance.now() + 1_200;
      while (performance.now() < until) {
        await connection.invoke(Null!, {});
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const lastCall = performance.now();
      expect(closedAt).toEqual([]);
      await expect.poll(() => closedAt.length, { timeout: 3_000 }).toBe(1);
      expect(closedAt[0]! - lastCall).toBeGreaterThanOrEqual(300);
    } finally {
      await client.close();
      await server.close();
    }
  });
});
