import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import {
  decodeCompletions,
  ErrorCode,
  listDevices,
  liveObjects,
  openDevice,
  ReleaseList,
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
  it('drains pushed ids oldest first, refuses when full, and fails after close', () => {
    const list = new ReleaseList(4);
    expect([1, 2, 3, 4, 5].map((id) => list.push(id))).toEqual([true, true, true, true, false]);
    expect(list.length).toBe(4);
    const drained: number[] = [];
    expect(list.drain((id) => drained.push(id))).toBe(4);
    expect(drained).toEqual([1, 2, 3, 4]);
    expect(list.push(2 ** 53 - 1)).toBe(true);
    list.drain((id) => expect(id).toBe(2 ** 53 - 1));
    list.close();
    expect(() => list.push(1)).toThrow(expect.objectContaining({ code: ErrorCode.CLOSED }));
  });

  it('rejects a capacity that is not a power of two', () => {
    expect(() => new ReleaseList(3)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('rejects ids that a JavaScript number cannot carry exactly', () => {
    const list = new ReleaseList(2);
    expect(() => list.push(-1)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => list.push(1.5)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
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
