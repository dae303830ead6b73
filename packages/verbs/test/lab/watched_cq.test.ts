/**
 * Watched completion queues on a real rxe queue pair: no completion thread,
 * this thread's event loop watches the completion channels. The Receive CQ
 * (armed) hands the echoes to onEvent; the Send CQ (unarmed, with a release
 * list) raises no event, its Sends are appended to the list by
 * postSendAndDrain's route (and drained in the same call) or by route(true),
 * which reports the list's empty -> non-empty transition once; armed, it
 * lets qp.drain() finish.
 */
import { until } from '@roce-rpc/lab';
import { afterAll, expect, it } from 'vitest';
import { COMPLETION_WORDS, connect, decodeCompletion, liveObjects, ReleaseList, type Completion } from '../../dist/index.js';
import { closeAll, LAB_ADDRESS, openLab, startEchoServer, type EchoServer } from './support.ts';

const SENDS = 16;
const MESSAGE_BYTES = 64;
const WAIT_MS = 30_000;

let server: EchoServer | undefined;
afterAll(() => server?.close());

it('routes Sends onto the release list only when asked, and Receives through the loop watch', async () => {
  server = startEchoServer(0);
  const { device, protectionDomain } = openLab();
  const received: Completion[] = [];
  const sendEvents: { count: number; transition: boolean }[] = [];
  const releaseList = new ReleaseList(2 * SENDS);
  const sendRecords = new Uint32Array(2 * SENDS * COMPLETION_WORDS);
  const sendCompletions = device.createCompletionQueue({
    depth: 2 * SENDS,
    releaseList,
    records: sendRecords,
    armed: false,
    onEvent: (count, transition) => sendEvents.push({ count, transition }),
  });
  const receiveRecords = new Uint32Array(2 * SENDS * COMPLETION_WORDS);
  const receiveCompletions = device.createCompletionQueue({
    depth: 2 * SENDS,
    records: receiveRecords,
    onEvent: (count) => {
      for (let index = 0; index < count; index++) received.push(decodeCompletion(receiveRecords, index));
    },
  });
  const sendRegion = protectionDomain.registerMemory(Buffer.alloc(SENDS * MESSAGE_BYTES, 0x57));
  const receiveRegion = protectionDomain.registerMemory(Buffer.alloc((SENDS + 1) * MESSAGE_BYTES));
  const cmId = await connect({
    address: LAB_ADDRESS,
    port: server.port,
    createQueuePair: (id) =>
      id.createQueuePair({ protectionDomain, sendCompletionQueue: sendCompletions, recvCompletionQueue: receiveCompletions, maxSendWr: 2 * SENDS, maxRecvWr: 2 * SENDS }),
  });
  const queuePair = cmId.queuePair!;
  const drained = new Float64Array(2 * SENDS);
  const released: number[] = [];
  const take = (count: number) => {
    for (let at = 0; at < count; at++) released.push(drained[at]!);
  };
  for (let slot = 0; slot <= SENDS; slot++) queuePair.postRecv(slot, [receiveRegion.sge(slot * MESSAGE_BYTES, MESSAGE_BYTES)]);
  // One Send at a time, each after the previous echo (which proves that Send done): each
  // post's route finds the Sends completed so far and its drain returns them.
  for (let index = 0; index < SENDS; index++) {
    take(queuePair.postSendAndDrain(index, sendRegion, index * MESSAGE_BYTES, MESSAGE_BYTES, sendCompletions, releaseList, drained));
    await until(() => received.length > index, `echo ${index}`, WAIT_MS);
  }
  expect(released.length).toBeGreaterThan(0);
  // One more Send posted without a route: once its echo is back it has completed, and an
  // unarmed CQ told nobody.
  queuePair.postSend({ wrId: SENDS, sges: [sendRegion.sge(0, MESSAGE_BYTES)] });
  await until(() => received.length > SENDS, 'the last echo', WAIT_MS);
  expect(received.map((completion) => completion.ok)).toEqual(new Array(SENDS + 1).fill(true));
  expect(sendEvents).toEqual([]);
  expect(releaseList.length).toBe(0);
  // route(true) appends it (and any Send before it) to the list and reports the transition, once.
  await until(
    () => {
      sendCompletions.route(true);
      return released.length + releaseList.length === SENDS + 1;
    },
    'the unrouted Sends',
    WAIT_MS,
  );
  expect(sendEvents).toEqual([{ count: 0, transition: true }]);
  take(releaseList.drainInto(drained));
  expect([...released].sort((a, b) => a - b)).toEqual(Array.from({ length: SENDS + 1 }, (_, index) => index));
  // Armed, the Send CQ's events let the drain markers be polled; the spare Receives are flushed.
  for (let slot = 0; slot < 2; slot++) queuePair.postRecv(100 + slot, [receiveRegion.sge(slot * MESSAGE_BYTES, MESSAGE_BYTES)]);
  sendCompletions.setArmed(true);
  await queuePair.drain();
  await until(() => received.length === SENDS + 3, 'the flushed Receives', WAIT_MS);
  expect(received.slice(SENDS + 1).map((completion) => [completion.wrId, completion.status])).toEqual([
    [100, 'IBV_WC_WR_FLUSH_ERR'],
    [101, 'IBV_WC_WR_FLUSH_ERR'],
  ]);
  closeAll(cmId, sendCompletions, receiveCompletions, releaseList, sendRegion, receiveRegion, protectionDomain, device);
});

it('leaves no native handle open', async () => {
  server!.close();
  server = undefined;
  await until(() => Object.keys(liveObjects()).length === 0, 'handles to close', WAIT_MS);
  expect(liveObjects()).toEqual({});
});
