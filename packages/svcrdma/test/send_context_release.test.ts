/**
 * The seed's release path, drain point by drain point. Each test fails if its
 * drain point is removed from the transport.
 */
import { XdrWriter } from '@roce-rpc/xdr';
import { afterEach, describe, expect, it } from 'vitest';
import {
  decodeReplyHeader,
  encodeCallHeader,
  RdmaProcedure,
  type CallHeaderFields,
  type WriteChunk,
} from '../src/index.js';
import { RdmaTransport, type CallHandler } from '../src/transport/transport.js';
import { ServicePool } from '../src/transport/service_pool.js';
import { LoopbackDevice } from './helpers/loopback_device.js';

/** Replies with the call's RPC bytes reversed, plus a DDP payload when asked (bytes the transport does not interpret). */
function echoHandler(payloadBytes = 0): CallHandler {
  return {
    handleCall(bytes) {
      const writer = new XdrWriter({ bulkThresholdBytes: 512 });
      writer.writeRaw(Buffer.from(bytes).reverse());
      if (payloadBytes > 0) writer.writeVariableOpaque(Buffer.alloc(payloadBytes, 0x77), 1 << 20, true);
      return { message: writer.finish() };
    },
  };
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Harness {
  device: LoopbackDevice;
  transport: RdmaTransport;
  pool: ServicePool;
  xid: number;
  /** Delivers one call into the next posted Receive and lets the pool serve it. */
  call(fields?: Partial<CallHeaderFields>): Promise<void>;
}

const harnesses: Harness[] = [];

function harness(options: { credits?: number; sendQueueDepth?: number; sendContextsMax?: number; payloadBytes?: number } = {}): Harness {
  const device = new LoopbackDevice();
  const pool = new ServicePool(2, (error) => {
    throw error;
  });
  const credits = options.credits ?? 8;
  const transport = new RdmaTransport(device, device, echoHandler(options.payloadBytes), pool, {
    credits,
    receiveInlineBytes: 4096,
    sendQueueDepth: options.sendQueueDepth ?? credits * 4,
    sendContextsMax: options.sendContextsMax ?? credits * 2,
    peerReceiveBytes: 4096,
  });
  device.onReleasePending = () => transport.onReleasePending();
  transport.start();
  const state: Harness = {
    device,
    transport,
    pool,
    xid: 100,
    async call(fields = {}) {
      const header = encodeCallHeader({
        xid: state.xid++,
        credits: credits,
        procedure: RdmaProcedure.MSG,
        callChunk: null,
        readChunks: [],
        writeList: [],
        replyChunk: null,
        ...fields,
      });
      const message = Buffer.concat([header, Buffer.from('an rpc call body')]);
      const slot = device.postedReceives.shift()!;
      transport.ring.buffer.set(message, slot * transport.ring.slotBytes);
      transport.onReceive(slot, message.length);
      await settle();
      await settle();
    },
  };
  harnesses.push(state);
  return state;
}

afterEach(async () => {
  for (const { pool, device } of harnesses.splice(0)) {
    await pool.close();
    device.close();
  }
});

describe('drain point between-rpcs: release after every RPC drains the list', () => {
  it('releases the previous reply\'s context when the next RPC is released', async () => {
    const { device, transport, call } = harness();
    await call();
    await call();
    device.completeSends(2); // drained by the self-enqueue: two free contexts
    await settle();
    await call();
    device.completeSends(1, { notify: false }); // the wake-up was missed: only the foreground drain remains
    await call(); // takes the other free context, so get() does not need to drain
    expect(transport.sendContexts.metrics.drains['empty-free-list']).toBe(0);
    expect(transport.sendContexts.metrics.drains['between-rpcs']).toBe(1);
    expect(transport.sendContexts.metrics.released['between-rpcs']).toBe(1);
    expect(device.releaseList.length).toBe(0);
    expect(transport.sendContexts.metrics.inUse).toBe(1); // only the last reply, still in flight
  });
});

describe('drain point self-enqueue: the trailing edge of a burst is drained by an idle worker', () => {
  it('enqueues the idle transport on the empty -> non-empty transition and drains with no RPC', async () => {
    const { device, transport, pool, call } = harness();
    await call();
    await call();
    const enqueuesBefore = pool.metrics.enqueues;
    device.completeSends(2); // one transition, two contexts
    await settle();
    expect(transport.metrics.selfEnqueues).toBe(1);
    expect(pool.metrics.enqueues).toBe(enqueuesBefore + 1);
    expect(transport.metrics.emptyReceives).toBe(1);
    expect(transport.sendContexts.metrics.drains['self-enqueue']).toBe(1);
    expect(transport.sendContexts.metrics.released['self-enqueue']).toBe(2);
    expect(transport.sendContexts.metrics.inUse).toBe(0);
  });

  it('does not enqueue again while the list stays non-empty', async () => {
    const { device, transport, call } = harness();
    for (let index = 0; index < 3; index++) await call();
    device.completeSends(1, { notify: false });
    device.completeSends(2); // pushes onto a non-empty list: no transition
    await settle();
    expect(transport.metrics.selfEnqueues).toBe(0);
    expect(device.releaseList.length).toBe(3);
  });
});

describe('drain point empty-free-list: get() drains and retries before allocating', () => {
  it('reuses a completed context instead of allocating a second one', async () => {
    const { device, transport, call } = harness();
    await call();
    device.completeSends(1, { notify: false });
    await call();
    // The release after the second RPC would also drain, but get() ran first and found the list.
    expect(transport.sendContexts.metrics.drains['empty-free-list']).toBe(1);
    expect(transport.sendContexts.metrics.allocations).toBe(1);
    expect(device.replies.map((reply) => reply.contextId)).toEqual([0, 0]);
  });
});

describe('drain point sq-wait: a worker that waited for Send Queue space drains', () => {
  it('waits when the Send Queue is full, is woken by the transition instead of a self-enqueue, then drains', async () => {
    const { device, transport, call } = harness({ credits: 4, sendQueueDepth: 4 });
    for (let index = 0; index < 5; index++) await call();
    expect(device.replies).toHaveLength(4);
    expect(transport.metrics.sqWaits).toBe(1);
    device.completeSends(1);
    await settle();
    await settle();
    expect(transport.metrics.selfEnqueues).toBe(0);
    expect(transport.sendContexts.metrics.drains['sq-wait']).toBe(1);
    expect(device.replies).toHaveLength(5);
  });

  it('wakes every waiting worker on one transition: the second waiter is not left for a later Send', async () => {
    const { device, transport, call } = harness({ credits: 4, sendQueueDepth: 4 });
    for (let index = 0; index < 6; index++) await call();
    expect(device.replies).toHaveLength(4);
    expect(transport.metrics.sqWaits).toBe(2); // both workers wait
    device.completeSends(4); // one empty -> non-empty transition for four Sends
    await settle();
    await settle();
    expect(device.replies).toHaveLength(6);
  });

  it('waits for a send context at the bound the same way', async () => {
    const { device, transport, call } = harness({ credits: 4, sendQueueDepth: 16, sendContextsMax: 4 });
    for (let index = 0; index < 5; index++) await call();
    expect(device.replies).toHaveLength(4);
    expect(transport.sendContexts.metrics.exhausted).toBe(1);
    device.completeSends(2);
    await settle();
    await settle();
    expect(device.replies).toHaveLength(5);
    expect(transport.sendContexts.metrics.allocations).toBe(4);
  });
});

describe('drain point teardown: after the queue pair is drained, before the receive queue is flushed', () => {
  it('releases every completed context and then destroys the pool without a leak', async () => {
    const { device, transport, call } = harness({ payloadBytes: 2000 });
    const writeChunk: WriteChunk = { length: 4096, segments: [{ handle: 9, length: 4096, offset: 0x1000n }] };
    await call({ writeList: [writeChunk] });
    await call({ writeList: [writeChunk] });
    expect(device.openRegistrations).toBeGreaterThan(2); // header buffers + Write sources
    device.completeSends(2, { notify: false, failed: true }); // flushed by the disconnect
    transport.finishClose();
    expect(transport.sendContexts.metrics.released.teardown).toBe(2);
    expect(transport.sendContexts.metrics.failedSends).toBe(2);
    expect(device.openRegistrations).toBe(0);
    expect(transport.ring.slotsFree).toBe(transport.ring.slotCount - transport.ring.posted);
  });

  it('refuses to destroy contexts whose Sends have not completed: the queue pair was not drained', async () => {
    const { transport, call } = harness();
    await call();
    expect(() => transport.finishClose()).toThrow(/still in use/);
  });
});

describe('replies, errors and resources on the way', () => {
  it('pushes a DDP payload through the Write chunk and releases its registrations on drain', async () => {
    const { device, transport, call } = harness({ payloadBytes: 3000 });
    await call({ writeList: [{ length: 4096, segments: [{ handle: 7, length: 4096, offset: 0x2000n }] }] });
    const [reply] = device.replies;
    expect(reply!.writes).toHaveLength(1);
    expect(reply!.writes[0]!.write.target).toEqual({ handle: 7, length: 3000, offset: 0x2000n });
    const header = decodeReplyHeader(reply!.send);
    expect(header).toMatchObject({ kind: 'reply', procedure: RdmaProcedure.MSG });
    const registrationsWhilePosted = device.openRegistrations;
    device.completeSends(1);
    await settle();
    expect(device.openRegistrations).toBe(registrationsWhilePosted - 1); // the Write source; the header buffer stays
    expect(transport.metrics.writtenBytes).toBe(3000);
  });

  it('answers a plain call behind the fixed header, and plans a plain call whose reply has bulk items in full', async () => {
    const plain = harness({ credits: 8 });
    await plain.call({ credits: 500 });
    const [reply] = plain.device.replies;
    expect(decodeReplyHeader(reply!.send)).toEqual({ kind: 'reply', xid: 100, credits: 8, procedure: RdmaProcedure.MSG, writeList: [], replyChunk: null, headerBytes: 28 });
    expect(reply!.send.subarray(28).toString()).toBe([...'an rpc call body'].reverse().join(''));
    // A DDP-eligible payload and no Write chunk to put it in: planReply sends it inline.
    const bulk = harness({ payloadBytes: 600 });
    await bulk.call();
    const [bulkReply] = bulk.device.replies;
    expect(decodeReplyHeader(bulkReply!.send)).toMatchObject({ kind: 'reply', procedure: RdmaProcedure.MSG, writeList: [], replyChunk: null });
    expect(bulkReply!.writes).toHaveLength(0);
    expect(bulkReply!.send.subarray(28 + 16 + 4, 28 + 16 + 4 + 600)).toEqual(Buffer.alloc(600, 0x77));
    expect([plain.transport.metrics.inlineReplies, bulk.transport.metrics.inlineReplies]).toEqual([1, 1]);
  });

  it('answers a bad version with ERR_VERS and a hostile chunk list with ERR_CHUNK, and keeps serving', async () => {
    const { device, transport } = harness();
    const slot = (bytes: Buffer) => {
      const receive = device.postedReceives.shift()!;
      transport.ring.buffer.set(bytes, receive * transport.ring.slotBytes);
      transport.onReceive(receive, bytes.length);
    };
    const words = (...values: number[]) => Buffer.from(new Uint32Array(values.map((value) => value >>> 0)).buffer).swap32();
    slot(words(0xabc, 2, 8, 0, 0, 0, 0));
    slot(words(0xdef, 1, 8, 0, 0, 1, 0xffffffff));
    slot(Buffer.alloc(10));
    await settle();
    await settle();
    expect(device.replies.map((reply) => decodeReplyHeader(reply.send))).toEqual([
      { kind: 'error', xid: 0xabc, credits: 8, errorCode: 1, versionLow: 1, versionHigh: 1 },
      { kind: 'error', xid: 0xdef, credits: 8, errorCode: 2, versionLow: null, versionHigh: null },
    ]);
    expect(transport.metrics.rejected).toEqual({ 'unsupported-version': 1, 'too-many-write-segments': 1, 'short-fixed-header': 1 });
    expect(transport.isOpen).toBe(true);
  });

  it('releases a context at once when its Send cannot be posted, and closes the transport', async () => {
    const { device, transport, call } = harness();
    device.failPosts = true;
    await call();
    expect(transport.sendContexts.metrics.inUse).toBe(0);
    expect(transport.isOpen).toBe(false);
    expect(device.disconnects).toBe(1);
  });

  it('keeps credits posted: a Receive is replaced as soon as one completes', async () => {
    const { device, transport, call } = harness({ credits: 4 });
    expect(device.postedReceives).toHaveLength(4);
    await call();
    expect(transport.ring.posted).toBe(4);
    expect(device.postedReceives).toHaveLength(4);
  });
});
