import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import {
  decodeCompletions,
  ErrorCode,
  listDevices,
  liveObjects,
  openDevice,
  ReleaseList,
  RELEASE_FAILED_BIT,
  VerbsError,
  COMPLETION_WORDS,
} from '../src/index.js';

describe('addon loading', () => {
  it('loads in the main thread and lists the RDMA devices present', () => {
    const devices = listDevices();
    expect(Array.isArray(devices)).toBe(true);
    for (const name of devices) expect(typeof name).toBe('string');
  });

  it('loads in a worker thread with its own instance and handles', async () => {
    const source = `
      import { parentPort } from 'node:worker_threads';
      const verbs = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)});
      const list = new verbs.ReleaseList(4);
      list.push(41);
      const before = verbs.liveObjects().ReleaseList;
      let drained = 0;
      list.drain((id) => { drained = id; });
      list.close();
      parentPort.postMessage({ devices: verbs.listDevices(), before, after: verbs.liveObjects().ReleaseList ?? 0, drained });
    `;
    const mainBefore = liveObjects()['ReleaseList'] ?? 0;
    const reply = await new Promise<{ devices: string[]; before: number; after: number; drained: number }>((resolve, reject) => {
      const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(source)}`));
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    expect(reply).toEqual({ devices: listDevices(), before: 1, after: 0, drained: 41 });
    expect(liveObjects()['ReleaseList'] ?? 0).toBe(mainBefore);
  });
});

describe('device errors', () => {
  it('opening an unknown device throws a VerbsError with code ENODEV', () => {
    let caught: unknown;
    try {
      openDevice('no-such-rdma-device');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(VerbsError);
    expect((caught as VerbsError).code).toBe('ENODEV');
    expect((caught as VerbsError).errno).toBe(19);
    expect((caught as VerbsError).message).toContain('no-such-rdma-device');
  });

  it('a device name that is not a string is an ERR_INVALID_ARG_TYPE, not a crash', () => {
    expect(() => openDevice(42 as unknown as string)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARG_TYPE }));
  });
});

describe('release list from JavaScript', () => {
  /** Threadsafe calls arrive through libuv's async handle: give them a few loop turns. */
  const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 20));

  it('reports the empty -> non-empty transition and drains pushed ids oldest first', () => {
    const list = new ReleaseList(4);
    expect([1, 2, 3, 4].map((id) => list.push(id))).toEqual([true, false, false, false]);
    expect(list.length).toBe(4);
    const drained: number[] = [];
    expect(list.drain((id) => drained.push(id))).toBe(4);
    expect(drained).toEqual([1, 2, 3, 4]);
    expect(list.push(RELEASE_FAILED_BIT - 1)).toBe(true);
    list.drain((id) => expect(id).toBe(RELEASE_FAILED_BIT - 1));
    list.close();
    expect(() => list.push(1)).toThrow(expect.objectContaining({ code: ErrorCode.CLOSED }));
  });

  it('treats a full list as a programmer error: it is sized to every Send in flight', () => {
    const list = new ReleaseList(2);
    list.push(1);
    list.push(2);
    expect(() => list.push(3)).toThrow(expect.objectContaining({ code: ErrorCode.INTERNAL, message: expect.stringContaining('release list full') }));
    list.close();
  });

  it('calls onPending once per transition on this thread, never per push', async () => {
    let wakes = 0;
    const list = new ReleaseList(8, { onPending: () => wakes++ });
    list.push(1);
    list.push(2);
    list.push(3);
    expect(wakes).toBe(0); // queued, delivered by the event loop
    await settle();
    expect(wakes).toBe(1);
    const out = new Float64Array(8);
    expect(list.drainInto(out)).toBe(3);
    expect([...out.subarray(0, 3)]).toEqual([1, 2, 3]);
    list.push(4);
    await settle();
    expect(wakes).toBe(2);
    list.close();
  });

  it('wakes the owner again when a drain has to leave ids behind', async () => {
    let wakes = 0;
    const list = new ReleaseList(8, { onPending: () => wakes++ });
    for (const id of [1, 2, 3]) list.push(id);
    await settle();
    expect(list.drainInto(new Float64Array(2))).toBe(2);
    await settle();
    expect(wakes).toBe(2);
    expect(list.drain(() => {})).toBe(1);
    list.close();
  });

  it('marks failed Sends and says the transport is closing', () => {
    const list = new ReleaseList(4);
    list.push(7);
    expect(list.closing).toBe(false);
    list.push(8, true);
    expect(list.closing).toBe(true);
    const drained: number[] = [];
    list.drain((id) => drained.push(id));
    expect(drained).toEqual([7, 8 + RELEASE_FAILED_BIT]);
    list.close();
  });

  it('rejects a capacity outside 2..65536 and takes any inside', () => {
    expect(() => new ReleaseList(1)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => new ReleaseList(65537)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    const list = new ReleaseList(3);
    [1, 2, 3].forEach((id) => list.push(id));
    expect(() => list.push(4)).toThrow(expect.objectContaining({ code: ErrorCode.INTERNAL }));
    list.close();
  });

  it('rejects ids that do not fit below the failed bit', () => {
    const list = new ReleaseList(2);
    expect(() => list.push(-1)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => list.push(1.5)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => list.push(RELEASE_FAILED_BIT)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    list.close();
  });
});

describe('completion records', () => {
  it('decodes wrId, status and opcode names from native records', () => {
    const words = new Uint32Array(2 * COMPLETION_WORDS);
    words.set([0x89abcdef, 0x1234, 0, 128, 64, 0, 17, 0, 0, 0], 0);
    words.set([5, 0, 5, 0, 0, 0, 17, 0x99, 0, 0], COMPLETION_WORDS);
    const [receive, flushed] = decodeCompletions(words, 2);
    expect(receive).toMatchObject({ wrId: 0x1234 * 2 ** 32 + 0x89abcdef, status: 'IBV_WC_SUCCESS', ok: true, opcode: 'IBV_WC_RECV', byteLength: 64, qpNumber: 17 });
    expect(flushed).toMatchObject({ wrId: 5, status: 'IBV_WC_WR_FLUSH_ERR', ok: false, opcode: 'IBV_WC_SEND', vendorError: 0x99 });
  });
});

describe('teardown', () => {
  it('leaves no native handle open', () => {
    expect(liveObjects()).toEqual({});
  });
});
