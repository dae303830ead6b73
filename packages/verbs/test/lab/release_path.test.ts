/**
 * The release path on a real rxe queue pair: a Send CQ whose completion thread
 * appends every Send to a ReleaseList and wakes JavaScript once per
 * empty -> non-empty transition, a notified Receive CQ, native Send Queue
 * accounting (waitForSendQueueSpace), and qp.drain() before
 * teardown (every posted Send is on the release list, success or flush, and
 * every posted Receive accounted for, when it resolves).
 */
import { until } from '@roce-rpc/lab';
import { afterAll, expect, it } from 'vitest';
import {
  COMPLETION_WORDS,
  connect,
  decodeCompletion,
  liveObjects,
  ReleaseList,
  RELEASE_FAILED_BIT,
  type Completion,
  type CompletionQueue,
} from '../../dist/index.js';
import { closeAll, LAB_ADDRESS, openLab, startEchoServer, type EchoServer } from './support.ts';

const SENDS = 64;
const MESSAGE_BYTES = 64;

let server: EchoServer | undefined;
afterAll(() => server?.close());

/** How long the device may take to complete what a test waits for. */
const WAIT_MS = 30_000;

/** A client whose Send CQ feeds a release list and whose Receive CQ is notified. */
async function releasePathClient(port: number) {
  const { device, protectionDomain } = openLab();
  const released: number[] = [];
  const received: Completion[] = [];
  const sinkCompletions: Completion[] = [];
  const wakes = { releaseList: 0, receives: 0 };
  const drained = new Float64Array(2 * SENDS);
  const releaseList: ReleaseList = new ReleaseList(2 * SENDS, {
    onPending: () => {
      wakes.releaseList++;
      const count = releaseList.drainInto(drained);
      for (let index = 0; index < count; index++) released.push(drained[index]!);
    },
  });
  const sendCompletions = device.createCompletionQueue({ depth: 2 * SENDS, releaseList, onCompletions: (batch) => sinkCompletions.push(...batch) });
  const words = new Uint32Array(SENDS * COMPLETION_WORDS);
  const receiveCompletions: CompletionQueue = device.createCompletionQueue({
    depth: 2 * SENDS,
    onPending: () => {
      wakes.receives++;
      const count = receiveCompletions.pollInto(words, SENDS);
      for (let index = 0; index < count; index++) received.push(decodeCompletion(words, index));
    },
  });
  const sendRegion = protectionDomain.registerMemory(Buffer.alloc(SENDS * MESSAGE_BYTES, 0x45 /* 'E': echoed */));
  const receiveRegion = protectionDomain.registerMemory(Buffer.alloc(2 * SENDS * MESSAGE_BYTES));
  const cmId = await connect({
    address: LAB_ADDRESS,
    port,
    createQueuePair: (id) =>
      id.createQueuePair({ protectionDomain, sendCompletionQueue: sendCompletions, recvCompletionQueue: receiveCompletions, maxSendWr: 2 * SENDS, maxRecvWr: 2 * SENDS }),
  });
  const close = () =>
    closeAll(cmId, sendCompletions, receiveCompletions, releaseList, sendRegion, receiveRegion, protectionDomain, device);
  return { cmId, queuePair: cmId.queuePair!, releaseList, released, received, sinkCompletions, wakes, sendRegion, receiveRegion, close };
}

it('appends every Send to the release list with one wake per burst, and delivers Receives through the notified CQ', async () => {
  server = startEchoServer(0);
  const client = await releasePathClient(server.port);
  // Receives for the echoes first, then the Sends back to back. The echo server
  // keeps only a few Receives posted, so send in rounds it can take.
  for (let slot = 0; slot < SENDS; slot++) client.queuePair.postRecv(slot, [client.receiveRegion.sge(slot * MESSAGE_BYTES, MESSAGE_BYTES)]);
  for (let round = 0; round < SENDS / 4; round++) {
    for (let index = round * 4; index < round * 4 + 4; index++) {
      client.queuePair.postSend({ wrId: index, sges: [client.sendRegion.sge(index * MESSAGE_BYTES, MESSAGE_BYTES)] });
    }
    await until(() => client.received.length >= round * 4 + 4, `echo round ${round}`, WAIT_MS);
  }
  // Native Send Queue accounting: every entry comes back with the Send completions.
  const depth = client.queuePair.capabilities.maxSendWr;
  await client.queuePair.waitForSendQueueSpace(depth);
  expect(client.queuePair.sendQueueAvailable).toBe(depth);
  await until(() => client.released.length >= SENDS, 'every Send on the release list', WAIT_MS);
  expect([...client.released].sort((a, b) => a - b)).toEqual(Array.from({ length: SENDS }, (_, index) => index));
  expect(client.sinkCompletions).toEqual([]); // no Send reached the JavaScript sink
  expect(client.received.map((completion) => completion.ok)).toEqual(new Array(SENDS).fill(true));
  expect(client.wakes.releaseList).toBeGreaterThan(0);
  expect(client.wakes.releaseList).toBeLessThanOrEqual(SENDS);
  expect(client.releaseList.closing).toBe(false);
  console.log(`release path: ${SENDS} Sends, ${client.wakes.releaseList} release-list wakes, ${client.wakes.receives} receive wakes`);
  client.close();
});

it('drain() resolves once every posted Send is on the release list and every Receive is flushed', async () => {
  const client = await releasePathClient(server!.port);
  const spareReceives = 8;
  for (let slot = 0; slot < spareReceives; slot++) client.queuePair.postRecv(1000 + slot, [client.receiveRegion.sge(slot * MESSAGE_BYTES, MESSAGE_BYTES)]);
  // Sends posted right before the drain: each completes or is flushed, and either
  // way must be on the release list by the time drain() resolves.
  for (let index = 0; index < 4; index++) client.queuePair.postSend({ wrId: 100 + index, sges: [client.sendRegion.sge(0, MESSAGE_BYTES)] });
  await client.queuePair.drain();
  const onList = client.releaseList.length + client.released.length;
  expect(onList).toBe(4);
  // Receives of the echoes that made it, then the rest flushed: none is lost.
  await until(() => client.received.length >= spareReceives, 'the flushed Receives', WAIT_MS);
  const flushed = client.received.filter((completion) => completion.status === 'IBV_WC_WR_FLUSH_ERR').length;
  expect(client.received.length).toBe(spareReceives);
  expect(flushed).toBeGreaterThanOrEqual(spareReceives - 4);
  await until(() => client.released.length === 4, 'the release-list wake', WAIT_MS);
  const failed = client.released.filter((id) => id >= RELEASE_FAILED_BIT).length;
  expect(client.releaseList.closing).toBe(failed > 0);
  expect(client.released.map((id) => id % RELEASE_FAILED_BIT).sort()).toEqual([100, 101, 102, 103]);
  client.close();
});

it('drain() also finishes after rdma_disconnect already moved the queue pair to the error state', async () => {
  const client = await releasePathClient(server!.port);
  for (let slot = 0; slot < 4; slot++) client.queuePair.postRecv(2000 + slot, [client.receiveRegion.sge(slot * MESSAGE_BYTES, MESSAGE_BYTES)]);
  client.cmId.disconnect();
  await client.queuePair.drain();
  await until(() => client.received.length >= 4, 'the flushed Receives', WAIT_MS);
  expect(client.received.map((completion) => [completion.wrId, completion.status])).toEqual(
    [2000, 2001, 2002, 2003].map((wrId) => [wrId, 'IBV_WC_WR_FLUSH_ERR']),
  );
  client.close();
});

it('leaves no native handle open', async () => {
  server!.close();
  server = undefined;
  await until(() => Object.keys(liveObjects()).length === 0, 'handles to close', WAIT_MS);
  expect(liveObjects()).toEqual({});
});
