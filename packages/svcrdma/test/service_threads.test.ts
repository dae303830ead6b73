/**
 * Worker-thread serving without RDMA: the threads options, the native service
 * queue's blocking take (timeout, close wakes a blocked worker, bounds), and
 * the worker pool's life (a broken service module, a worker that dies and is
 * replaced). The transports themselves need rxe: test/lab/threads.test.ts.
 * Imports dist: the pool starts dist/threads/worker_main.js.
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { CALLS_PER_TAKE_MAX, nativeService } from '../dist/threads/native_service.js';
import { WorkerPool } from '../dist/threads/worker_pool.js';
import { fillSvcRdmaThreadsOptions, SvcRdmaThreadedServer } from '../dist/index.js';

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).href;

describe('threads options', () => {
  it('fills the transport options and validates threads, serviceModule and the context bound by field', () => {
    const filled = fillSvcRdmaThreadsOptions({ threads: 2, serviceModule: fixture('crash_once_service.ts') });
    expect(filled.threads).toBe(2);
    expect(filled.credits).toBe(64);
    expect(() => fillSvcRdmaThreadsOptions({ threads: 0, serviceModule: 'x' })).toThrow(/option threads must be an integer in \[1, 64\]/);
    expect(() => fillSvcRdmaThreadsOptions({ threads: 65, serviceModule: 'x' })).toThrow(/option threads/);
    expect(() => fillSvcRdmaThreadsOptions({ threads: 1, serviceModule: '' })).toThrow(/option serviceModule/);
    expect(() => fillSvcRdmaThreadsOptions({ threads: 1, serviceModule: 'x', credits: 16, sendQueueDepth: 16, sendContextsMax: 32 })).toThrow(
      /option sendContextsMax must be at most sendQueueDepth/,
    );
  });
});

describe('native service queue (no transports)', () => {
  it('a take with nothing queued blocks for its wait and returns 0', () => {
    const queue = nativeService.serviceQueueCreate(1);
    const started = performance.now();
    expect(nativeService.serviceQueueTake(queue, 0, 30)).toBe(0);
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
    expect(nativeService.serviceQueueStats(queue)).toMatchObject({ takes: 0, timeouts: 1, queued: 0 });
    nativeService.serviceQueueClose(queue);
  });

  it('closing the queue wakes a worker thread blocked in take at once', async () => {
    const queue = nativeService.serviceQueueCreate(1);
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const service = require(workerData.addon);
       parentPort.postMessage('blocking');
       const started = Date.now();
       const taken = service.serviceQueueTake(workerData.queue, 0, 1000);
       parentPort.postMessage({ taken, waitedMs: Date.now() - started });`,
      { eval: true, workerData: { queue, addon: new URL('../../verbs/roce-verbs.linux-x64-gnu.node', import.meta.url).pathname } },
    );
    let blocking!: () => void;
    const started = new Promise<void>((resolve) => (blocking = resolve));
    const done = new Promise<{ taken: number; waitedMs: number }>((resolve) =>
      worker.on('message', (message) => (message === 'blocking' ? blocking() : resolve(message))),
    );
    await started;
    // The worker is inside take (or about to enter it) by now.
    await new Promise((resolve) => setTimeout(resolve, 300));
    nativeService.serviceQueueClose(queue);
    const { taken, waitedMs } = await done;
    expect(taken).toBe(0);
    expect(waitedMs).toBeGreaterThanOrEqual(100);
    expect(waitedMs).toBeLessThan(900);
    await worker.terminate();
  });

  it('refuses waits beyond a second, seats beyond the bound and unknown queues', () => {
    const queue = nativeService.serviceQueueCreate(1);
    expect(() => nativeService.serviceQueueTake(queue, 0, 1001)).toThrow(/waitMs/);
    expect(() => nativeService.serviceQueueTake(queue, 64, 1)).toThrow(/worker/);
    expect(nativeService.serviceQueueVacate(queue, 3)).toBe(0);
    nativeService.serviceQueueClose(queue);
    expect(() => nativeService.serviceQueueTake(queue, 0, 1)).toThrow(expect.objectContaining({ code: 'ERR_VERBS_CLOSED' }));
  });

  it('bounds the calls one take receives: 1 to CALLS_PER_TAKE_MAX', async () => {
    expect(() => nativeService.serviceQueueCreate(0)).toThrow(/callsPerTake must be in \[1, 8\]/);
    expect(() => nativeService.serviceQueueCreate(CALLS_PER_TAKE_MAX + 1)).toThrow(/callsPerTake/);
    nativeService.serviceQueueClose(nativeService.serviceQueueCreate(CALLS_PER_TAKE_MAX));
    for (const callsPerTake of [0, 9, 1.5]) {
      await expect(SvcRdmaThreadedServer.listen({ threads: 1, callsPerTake, serviceModule: fixture('crash_once_service.ts') })).rejects.toThrow(/option callsPerTake must be an integer in \[1, 8\]/);
    }
  });
});

describe('worker pool', () => {
  it('refuses to start when the service module cannot load, naming it', async () => {
    const pool = new WorkerPool(1, 1, fixture('broken_service.ts'), null, () => {});
    await expect(pool.ready()).rejects.toThrow(/died 4 times before it was ready: check serviceModule .*broken_service/);
    await pool.close();
  });

  it('replaces a worker that dies after it was ready, on the same seat', async () => {
    const errors: Error[] = [];
    const crashes = new SharedArrayBuffer(4);
    const pool = new WorkerPool(2, 1, fixture('crash_once_service.ts'), { crashes }, (error) => errors.push(error));
    await pool.ready();
    for (const deadline = performance.now() + 10_000; pool.metrics().workerRestarts === 0 && performance.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(pool.metrics().workerRestarts).toBe(1);
    expect(errors.map((error) => error.message)).toContain('a worker crash for the test');
    await pool.ready();
    expect(new Int32Array(crashes)[0]).toBe(3);
    await pool.close();
  });
});
