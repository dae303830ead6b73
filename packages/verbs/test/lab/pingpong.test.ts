/**
 * 10 000 ping-pongs between two Node processes, both polling their CQs
 * (the low-latency path): every request gets its own reply, in order,
 * and no completion is lost or duplicated.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { COMPLETION_WORDS, connect, decodeCompletion, ErrorCode, type Completion } from '../../dist/index.js';
import { LAB_ADDRESS, openLab } from './support.ts';

const ROUNDS = 10_000;
const MESSAGE_BYTES = 64;

/** Starts bench/peer.ts (`batch` or `calls` serving) and connects to it. */
async function connectToPeer(path: 'batch' | 'calls') {
  const peer = spawn(process.execPath, [fileURLToPath(new URL('../../bench/peer.ts', import.meta.url)), '0', path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => peer.once('exit', resolve));
  const port = await new Promise<number>((resolve) =>
    createInterface({ input: peer.stdout! }).on('line', (line) => {
      const match = /^listening (\d+)$/.exec(line);
      if (match) resolve(Number(match[1]));
    }),
  );
  const { device, protectionDomain } = openLab();
  const completionQueue = device.createCompletionQueue({ depth: 64 });
  const receiveRegion = protectionDomain.registerMemory(Buffer.alloc(MESSAGE_BYTES));
  const sendRegion = protectionDomain.registerMemory(Buffer.alloc(MESSAGE_BYTES));
  const cmId = await connect({
    address: LAB_ADDRESS,
    port,
    createQueuePair: (id) => id.createQueuePair({ protectionDomain, sendCompletionQueue: completionQueue, recvCompletionQueue: completionQueue, maxSendWr: 16, maxRecvWr: 4 }),
  });
  const close = async () => {
    sendRegion.buffer[0] = 0x51; // 'Q': the peer stops
    cmId.queuePair!.postSendOne(1 << 30, sendRegion, 0, MESSAGE_BYTES);
    await exited;
    cmId.close();
    for (const closable of [receiveRegion, sendRegion, completionQueue, protectionDomain, device]) closable.close();
  };
  return { cmId, queuePair: cmId.queuePair!, completionQueue, receiveRegion, sendRegion, close };
}

/** Counts Send and Receive completions, failing on any out of order. */
function completionCounter() {
  const counts = { sendCompletions: 0, receiveCompletions: 0 };
  /** True when `completion` is the Receive of `round`. */
  const take = (completion: Completion, round: number): boolean => {
    // Sends complete in posting order, possibly after their reply arrived.
    const expected = completion.opcode === 'IBV_WC_SEND' ? counts.sendCompletions : round;
    if (!completion.ok || completion.wrId !== expected) throw new Error(`round ${round}: ${JSON.stringify(completion)}`);
    if (completion.opcode === 'IBV_WC_SEND') {
      counts.sendCompletions++;
      return false;
    }
    counts.receiveCompletions++;
    return true;
  };
  return { counts, take };
}

it('10 000 polled ping-pongs arrive in order with one Send and one Receive completion each', async () => {
  const { queuePair, completionQueue, receiveRegion, sendRegion, close } = await connectToPeer('calls');
  const words = new Uint32Array(16 * COMPLETION_WORDS);
  const { counts, take } = completionCounter();
  let receiveCompletions = 0;
  for (let round = 0; round < ROUNDS; round++) {
    queuePair.postRecvOne(round, receiveRegion, 0, MESSAGE_BYTES);
    sendRegion.buffer.writeUInt32BE(round, 4);
    queuePair.postSendOne(round, sendRegion, 0, MESSAGE_BYTES);
    let received = false;
    while (!received) {
      const count = completionQueue.pollInto(words, 16, 1_000_000);
      for (let index = 0; index < count; index++) received = take(decodeCompletion(words, index), round) || received;
    }
    if (receiveRegion.buffer.readUInt32BE(4) !== round) throw new Error(`round ${round}: reply carries ${receiveRegion.buffer.readUInt32BE(4)}`);
  }
  // The last Send completion may trail the last reply.
  while (counts.sendCompletions < ROUNDS) {
    const count = completionQueue.pollInto(words, 16, 1_000_000);
    for (let index = 0; index < count; index++) take(decodeCompletion(words, index), ROUNDS);
  }
  expect(counts).toEqual({ sendCompletions: ROUNDS, receiveCompletions: ROUNDS });
  expect(completionQueue.pollInto(words, 16, 0)).toBe(0);
  await close();
}, 600_000); // two spinning pollers in the emulated guest: minutes when the host is loaded (timed out at 180 s, load 15)

it('a WorkBatch posts and polls 2 000 ping-pongs in one call each, and refuses misuse', async () => {
  const rounds = 2000;
  const { queuePair, completionQueue, receiveRegion, sendRegion, close } = await connectToPeer('batch');
  const batch = queuePair.createWorkBatch({ regions: [receiveRegion, sendRegion], completionQueue, capacity: 4, completionsMax: 16 });
  const { counts, take } = completionCounter();
  let calls = 0;
  for (let round = 0; round < rounds; round++) {
    sendRegion.buffer.writeUInt32BE(round, 4);
    batch.receive(round, 0, 0, MESSAGE_BYTES);
    batch.send(round, 1, 0, MESSAGE_BYTES);
    let received = false;
    while (!received) {
      const count = batch.submit(1_000_000);
      calls++;
      for (let index = 0; index < count; index++) received = take(decodeCompletion(batch.completions, index), round) || received;
    }
    if (receiveRegion.buffer.readUInt32BE(4) !== round) throw new Error(`round ${round}: reply carries ${receiveRegion.buffer.readUInt32BE(4)}`);
  }
  expect(counts.receiveCompletions).toBe(rounds);
  expect(calls).toBeLessThan(2 * rounds);

  batch.receive(0, 2, 0, MESSAGE_BYTES);
  expect(() => batch.submit(-1)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  batch.send(0, 1, MESSAGE_BYTES - 1, 2);
  expect(() => batch.submit(-1)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  expect(() => sendRegion.close()).toThrow(expect.objectContaining({ code: 'EBUSY' }));
  batch.close();
  expect(() => batch.submit(-1)).toThrow(expect.objectContaining({ code: ErrorCode.CLOSED }));
  await close();
});
