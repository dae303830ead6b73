/**
 * Interop with rping (librdmacm's example, a peer nobody here wrote).
 * Its exchange, per ping:
 *   client Sends an advertisement of its source buffer (addr be64, rkey be32, len be32);
 *   server RDMA Reads the source, then Sends a 16-byte "go ahead";
 *   client Sends an advertisement of its sink buffer;
 *   server RDMA Writes the data (strlen + 1 bytes) into the sink, then Sends "go ahead";
 *   client (with -V) checks sink == source.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connect, listen, type CmId, type Device, type ProtectionDomain } from '../../dist/index.js';
import { assertOk, CompletionRouter, LAB_ADDRESS, openLab } from './support.ts';
import { startPeer } from './process.ts';

const PINGS = 5;
const SIZE = 64;
const ADVERTISEMENT_BYTES = 16;

let device: Device;
let protectionDomain: ProtectionDomain;

beforeAll(() => ({ device, protectionDomain } = openLab()));
afterAll(() => {
  protectionDomain?.close();
  device?.close();
});

function advertise(buffer: Buffer, address: number, rkey: number, length: number): void {
  buffer.writeBigUInt64BE(BigInt(address), 0);
  buffer.writeUInt32BE(rkey, 8);
  buffer.writeUInt32BE(length, 12);
}

/** rping's ping text: "rdma-ping-<n>: " then printable letters; NUL-terminated. */
function pingText(ping: number, size: number): Buffer {
  const text = Buffer.alloc(size);
  const header = `rdma-ping-${ping}: `;
  text.write(header);
  for (let index = header.length, letter = 65 + (ping % 58); index < size - 1; index++) {
    text[index] = letter;
    letter = letter >= 122 ? 65 : letter + 1;
  }
  return text;
}

it('our client completes a validated session against rping -s -V', async () => {
  const port = 19_400 + (process.pid % 500);
  const rping = startPeer('/usr/bin/rping', ['-s', '-V', '-a', LAB_ADDRESS, '-p', String(port), '-C', String(PINGS)]);
  const router = new CompletionRouter(device, 32);
  const goAhead = protectionDomain.registerMemory(Buffer.alloc(ADVERTISEMENT_BYTES));
  const advertisement = protectionDomain.registerMemory(Buffer.alloc(ADVERTISEMENT_BYTES));
  const source = protectionDomain.registerMemory(Buffer.alloc(SIZE), { remoteRead: true, remoteWrite: true });
  const sink = protectionDomain.registerMemory(Buffer.alloc(SIZE), { remoteRead: true, remoteWrite: true });
  let wrId = 1;
  const postGoAhead = (cmId: CmId) => {
    const id = wrId++;
    cmId.queuePair!.postRecv(id, [goAhead.sge()]);
    return router.completion(id);
  };
  let received!: Promise<unknown>;
  const attempt = () =>
    connect({
      address: LAB_ADDRESS,
      port,
      createQueuePair: (id) => {
        const queuePair = id.createQueuePair({ protectionDomain, sendCompletionQueue: router.completionQueue, recvCompletionQueue: router.completionQueue, maxSendWr: 16, maxRecvWr: 2 });
        received = postGoAhead(id);
        return queuePair;
      },
    });
  // rping needs a moment to listen (seconds on a busy emulated guest).
  let connected: CmId | undefined;
  for (const deadline = Date.now() + 30_000; connected === undefined; ) {
    connected = await attempt().catch((error: { code?: string }) => {
      if (error.code !== 'ECONNREFUSED' || Date.now() > deadline) throw error;
      return new Promise<undefined>((resolve) => setTimeout(resolve, 250));
    });
  }
  const cmId = connected;
  const sendAdvertisement = async (region: typeof source) => {
    advertise(advertisement.buffer, region.address, region.rkey, SIZE);
    const id = wrId++;
    const sent = router.completion(id);
    cmId.queuePair!.postSend({ wrId: id, sges: [advertisement.sge()] });
    assertOk(await sent);
  };
  for (let ping = 0; ping < PINGS; ping++) {
    pingText(ping, SIZE).copy(source.buffer);
    sink.buffer.fill(0);
    await sendAdvertisement(source);
    assertOk((await received) as never);
    received = postGoAhead(cmId);
    await sendAdvertisement(sink);
    assertOk((await received) as never);
    received = postGoAhead(cmId);
    expect(sink.buffer.equals(source.buffer), `ping ${ping}: sink differs from source`).toBe(true);
  }
  const disconnected = new Promise((resolve) => cmId.once('disconnected', resolve));
  cmId.disconnect();
  await disconnected;
  cmId.close();
  expect(await rping.exited).toBe(0);
  for (const closable of [goAhead, advertisement, source, sink, router.completionQueue]) closable.close();
});

it('rping -c -V completes a validated session against our server', async () => {
  const listener = listen({ address: LAB_ADDRESS, port: 0 });
  const router = new CompletionRouter(device, 32);
  const incoming = protectionDomain.registerMemory(Buffer.alloc(ADVERTISEMENT_BYTES));
  const goAhead = protectionDomain.registerMemory(Buffer.alloc(ADVERTISEMENT_BYTES));
  const data = protectionDomain.registerMemory(Buffer.alloc(64 * 1024));
  const pingsRead: string[] = [];
  const sessionOver = new Promise<void>((resolve, reject) => {
    listener.once('connection', ({ cmId }) => {
      const queuePair = cmId.createQueuePair({ protectionDomain, sendCompletionQueue: router.completionQueue, recvCompletionQueue: router.completionQueue, maxSendWr: 16, maxRecvWr: 2 });
      queuePair.postRecv(1, [incoming.sge()]);
      let readNext = true; // the first advertisement of each ping names the source
      router.unclaimed = (completion) => {
        if (!completion.ok) return reject(new Error(`${completion.opcode} ${completion.status}`));
        if (completion.opcode === 'IBV_WC_RECV') {
          const remoteAddress = incoming.buffer.readBigUInt64BE(0);
          const rkey = incoming.buffer.readUInt32BE(8);
          const length = incoming.buffer.readUInt32BE(12);
          queuePair.postRecv(1, [incoming.sge()]);
          if (readNext) {
            queuePair.postRdmaRead({ wrId: 2, sges: [data.sge(0, length)], remoteAddress, rkey });
          } else {
            const textLength = data.buffer.indexOf(0) + 1;
            queuePair.postRdmaWrite({ wrId: 3, sges: [data.sge(0, textLength)], remoteAddress, rkey });
          }
          readNext = !readNext;
        } else if (completion.opcode === 'IBV_WC_RDMA_READ' || completion.opcode === 'IBV_WC_RDMA_WRITE') {
          if (completion.opcode === 'IBV_WC_RDMA_READ') pingsRead.push(data.buffer.toString('latin1', 0, 16));
          queuePair.postSend({ wrId: 4, sges: [goAhead.sge()] });
        }
      };
      cmId.once('disconnected', () => {
        cmId.close();
        resolve();
      });
      void cmId.accept().catch(reject);
    });
  });
  const rping = startPeer('/usr/bin/rping', ['-c', '-V', '-a', LAB_ADDRESS, '-p', String(listener.port), '-C', String(PINGS), '-S', String(SIZE)]);
  expect(await rping.exited, rping.output.join('\n')).toBe(0);
  await sessionOver;
  expect(pingsRead).toHaveLength(PINGS);
  expect(pingsRead[0]).toMatch(/^rdma-ping-0: /);
  listener.close();
  for (const closable of [incoming, goAhead, data, router.completionQueue]) closable.close();
});
