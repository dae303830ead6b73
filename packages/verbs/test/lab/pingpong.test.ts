/**
 * 10 000 ping-pongs between two Node processes, both polling their CQs
 * (the low-latency path): every request gets its own reply, in order,
 * and no completion is lost or duplicated.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { COMPLETION_WORDS, connect, decodeCompletion } from '../../dist/index.js';
import { LAB_ADDRESS, openLab } from './support.ts';

const ROUNDS = 10_000;
const MESSAGE_BYTES = 64;

it('10 000 polled ping-pongs arrive in order with one Send and one Receive completion each', async () => {
  const peer = spawn(process.execPath, [fileURLToPath(new URL('../../bench/peer.ts', import.meta.url)), '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
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
  const queuePair = cmId.queuePair!;
  const words = new Uint32Array(16 * COMPLETION_WORDS);
  let sendCompletions = 0;
  let receiveCompletions = 0;
  for (let round = 0; round < ROUNDS; round++) {
    queuePair.postRecvOne(round, receiveRegion, 0, MESSAGE_BYTES);
    sendRegion.buffer.writeUInt32BE(round, 4);
    queuePair.postSendOne(round, sendRegion, 0, MESSAGE_BYTES);
    let received = false;
    while (!received) {
      const count = completionQueue.pollInto(words, 16, 1_000_000);
      for (let index = 0; index < count; index++) {
        const completion = decodeCompletion(words, index);
        // Sends complete in posting order, possibly after their reply arrived.
        const expected = completion.opcode === 'IBV_WC_SEND' ? sendCompletions : round;
        if (!completion.ok || completion.wrId !== expected) throw new Error(`round ${round}: ${JSON.stringify(completion)}`);
        if (completion.opcode === 'IBV_WC_SEND') sendCompletions++;
        else {
          receiveCompletions++;
          received = true;
        }
      }
    }
    if (receiveRegion.buffer.readUInt32BE(4) !== round) throw new Error(`round ${round}: reply carries ${receiveRegion.buffer.readUInt32BE(4)}`);
  }
  // The last Send completion may trail the last reply.
  while (sendCompletions < ROUNDS) {
    const count = completionQueue.pollInto(words, 16, 1_000_000);
    for (let index = 0; index < count; index++) if (decodeCompletion(words, index).opcode === 'IBV_WC_SEND') sendCompletions++;
  }
  expect({ sendCompletions, receiveCompletions }).toEqual({ sendCompletions: ROUNDS, receiveCompletions: ROUNDS });
  expect(completionQueue.pollInto(words, 16, 0)).toBe(0);

  sendRegion.buffer[0] = 0x51; // 'Q': the peer stops
  queuePair.postSendOne(ROUNDS, sendRegion, 0, MESSAGE_BYTES);
  await exited;
  cmId.close();
  for (const closable of [receiveRegion, sendRegion, completionQueue, protectionDomain, device]) closable.close();
});
