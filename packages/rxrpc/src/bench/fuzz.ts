/**
 * `pnpm fuzz`: feeds the packet decoders at least a million random and
 * mutated packets, then throws a sample of them at a live server over UDP.
 * Every decoder call must either succeed or throw an RxError (counted as a
 * rejection); anything else is a bug and fails the run. The live part checks
 * the server still answers a call afterwards.
 *
 *   node dist/bench/fuzz.js [--packets N] [--live N] [--seed S]
 */
import dgram from 'node:dgram';
import { parseArgs } from 'node:util';
import { RxClient } from '../client.js';
import { RxError } from '../errors.js';
import { AckReason, HEADER_SIZE, PacketFlag, PacketType } from '../protocol.js';
import { RxServer } from '../server.js';
import { decodeAbortCode, decodeAck, decodeHeader, encodeAckBody, encodeJumbo, encodePacket, splitData } from '../wire/codec.js';
import { decodeDebugRequest } from '../endpoint/debug-replies.js';

const { values: flags } = parseArgs({
  options: { packets: { type: 'string', default: '1000000' }, live: { type: 'string', default: '20000' }, seed: { type: 'string', default: '1' } },
});

let state = Number(flags.seed) >>> 0 || 1;
function random(): number {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 2 ** 32;
}
const randomInt = (limit: number): number => Math.floor(random() * limit);

/** Valid packets of every kind, the seeds that mutations start from. */
function seeds(): Uint8Array[] {
  const header = { epoch: 1, cid: 4, callNumber: 1, seq: 1, serial: 1, type: PacketType.DATA, flags: PacketFlag.CLIENT_INITIATED, userStatus: 0, securityIndex: 0, checksum: 0, serviceId: 42 };
  const ack = encodeAckBody({
    bufferSpace: 0, maxSkew: 0, firstPacket: 1, previousPacket: 3, serial: 1, reason: AckReason.REQUESTED,
    acks: Uint8Array.of(1, 0, 1), trailer: { maxMTU: 1444, ifMTU: 1444, rwind: 32, maxDgramPackets: 4 },
  });
  const jumbo = encodeJumbo([0, 1, 2].map((index) => ({ header: { ...header, seq: 1 + index }, data: new Uint8Array(index < 2 ? 1412 : 50) })));
  return [
    encodePacket(header, Uint8Array.of(0, 0, 0, 1)),
    encodePacket({ ...header, type: PacketType.ACK, seq: 0 }, ack),
    encodePacket({ ...header, type: PacketType.ABORT }, Uint8Array.of(0xff, 0xff, 0xfe, 0x39)),
    encodePacket({ ...header, type: PacketType.DEBUG }, Uint8Array.of(0, 0, 0, 1, 0, 0, 0, 0)),
    jumbo,
  ];
}

function mutate(seed: Uint8Array): Uint8Array {
  if (random() < 0.2) {
    const bytes = new Uint8Array(randomInt(HEADER_SIZE + 64));
    for (let index = 0; index < bytes.byteLength; index++) bytes[index] = randomInt(256);
    return bytes;
  }
  const bytes = seed.slice(0, random() < 0.2 ? randomInt(seed.byteLength + 1) : seed.byteLength);
  for (let flips = 1 + randomInt(4); flips > 0 && bytes.byteLength > 0; flips--) bytes[randomInt(bytes.byteLength)] = randomInt(256);
  return bytes;
}

/** Runs every decoder that could see this packet; returns false when one rejected it. */
function decodeAll(packet: Uint8Array): boolean {
  try {
    const header = decodeHeader(packet);
    const body = packet.subarray(HEADER_SIZE);
    if (header.type === PacketType.ACK) decodeAck(body);
    if (header.type === PacketType.ABORT) decodeAbortCode(body);
    if (header.type === PacketType.DEBUG) decodeDebugRequest(body);
    if (header.type === PacketType.DATA) splitData(packet, header);
    return true;
  } catch (error) {
    if (error instanceof RxError) return false;
    throw error;
  }
}

async function live(packets: Uint8Array[]): Promise<void> {
  const server = await RxServer.listen({ serviceModule: new URL('./bench-service.js', import.meta.url), address: '127.0.0.1', workers: 2 });
  const socket = dgram.createSocket('udp4');
  try {
    for (const packet of packets) await new Promise<void>((resolve) => socket.send(packet, server.port, '127.0.0.1', () => resolve()));
    const client = await RxClient.open({ call: { idleDeadMs: 5_000 } });
    const reply = await client.connect('127.0.0.1', server.port, 42).call(Uint8Array.of(0, 0, 0, 1));
    await client.close();
    const stats = await server.stats();
    console.log(`live: ${packets.length} hostile datagrams sent, server rejected ${stats.counters.packetsRejected}, then answered a Null call (${reply.byteLength} bytes)`);
  } finally {
    socket.close();
    await server.close();
  }
}

const total = Number(flags.packets);
const pool = seeds();
let rejected = 0;
const started = performance.now();
const liveSample: Uint8Array[] = [];
for (let index = 0; index < total; index++) {
  const packet = mutate(pool[randomInt(pool.length)]!);
  if (!decodeAll(packet)) rejected += 1;
  if (liveSample.length < Number(flags.live) && random() < 0.05) liveSample.push(packet);
}
console.log(`decoders: ${total} packets in ${((performance.now() - started) / 1000).toFixed(1)} s, ${rejected} rejected with RxError, 0 escaped exceptions`);
await live(liveSample);
