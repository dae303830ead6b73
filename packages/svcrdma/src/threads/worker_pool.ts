/**
 * WorkerPool: the nfsd threads. `threads` worker threads (worker_main.ts) run
 * the svc_recv loop over one native service queue; this main-thread object
 * starts them, replaces one that dies, tells them about torn-down transports
 * and sums their counters.
 *
 * A dying worker: its seat is vacated natively (`serviceQueueVacate`): the
 * Receive slot it held goes back and is posted again, a send context it was
 * building goes back to the free list, the transport's BUSY bit is cleared
 * and the transport is queued again if it has work — so no transport is left
 * busy forever. The RPC it was serving gets no reply (the client's timeout
 * and retransmission cover it). A replacement takes the same seat and keeps
 * adding to the same counter row.
 *
 * Life: created by the threaded server (main thread), `ready()` resolves once
 * every worker loaded the service module, `close()` stops them after the RPCs
 * they serve, then closes the queue.
 */
import assert from 'node:assert';
import { Worker } from 'node:worker_threads';
import { assertCurrentAddon, CALLS_PER_TAKE_MAX, nativeService, WORKER_SEATS_MAX } from './native_service.js';
import { createCounterTable, sumCounters, type WorkerCounters } from './worker_metrics.js';

export interface WorkerData {
  readonly seat: number;
  readonly queueId: number;
  readonly serviceModule: string;
  readonly serviceOptions: unknown;
  readonly counters: SharedArrayBuffer;
}

/** Main -> worker. */
export type PoolMessage = { readonly type: 'stop' } | { readonly type: 'transport-gone'; readonly transportId: number };
/** Worker -> main. */
type WorkerMessage = { readonly type: 'ready' } | { readonly type: 'failure'; readonly message: string };

/** Replacements in a row for workers that die before they are ready: a broken service module, not bad luck. */
const EARLY_DEATHS_MAX = 3;

export interface WorkerPoolMetrics extends WorkerCounters {
  /** Workers replaced after they died. */
  workerRestarts: number;
}

export class WorkerPool {
  readonly queueId: number;
  private readonly workers: (Worker | null)[];
  private readonly counters: SharedArrayBuffer;
  private readonly readyWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  private readyCount = 0;
  private earlyDeaths = 0;
  private restarts = 0;
  private closing = false;
  private startError: Error | null = null;

  constructor(
    readonly threads: number,
    /** Most calls of one transport a worker's take receives at once (the native queue's). */
    readonly callsPerTake: number,
    private readonly serviceModule: string,
    private readonly serviceOptions: unknown,
    /** Told about our own errors in a worker (the transport was closed; the worker goes on). */
    private readonly onError: (error: Error) => void,
  ) {
    assert(Number.isInteger(threads) && threads >= 1 && threads <= WORKER_SEATS_MAX);
    assert(Number.isInteger(callsPerTake) && callsPerTake >= 1 && callsPerTake <= CALLS_PER_TAKE_MAX);
    assertCurrentAddon();
    this.queueId = nativeService.serviceQueueCreate(callsPerTake);
    this.counters = createCounterTable(threads);
    this.workers = Array.from({ length: threads }, () => null);
    for (let seat = 0; seat < threads; seat++) this.start(seat);
  }

  /** Resolves once every worker has loaded the service module. */
  ready(): Promise<void> {
    if (this.startError !== null) return Promise.reject(this.startError);
    if (this.readyCount === this.threads) return Promise.resolve();
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  metrics(): WorkerPoolMetrics {
    return { ...sumCounters(this.counters), workerRestarts: this.restarts };
  }

  /** A transport was torn down: workers drop their views of it. */
  transportGone(transportId: number): void {
    for (const worker of this.workers) worker?.postMessage({ type: 'transport-gone', transportId } satisfies PoolMessage);
  }

  async close(): Promise<void> {
    this.closing = true;
    const exits = this.workers.map((worker) => (worker === null ? Promise.resolve() : new Promise<void>((resolve) => worker.once('exit', () => resolve()))));
    for (const worker of this.workers) worker?.postMessage({ type: 'stop' } satisfies PoolMessage);
    await Promise.all(exits);
    nativeService.serviceQueueClose(this.queueId);
  }

  private start(seat: number): void {
    const workerData: WorkerData = { seat, queueId: this.queueId, serviceModule: this.serviceModule, serviceOptions: this.serviceOptions, counters: this.counters };
    const worker = new Worker(new URL('./worker_main.js', import.meta.url), { workerData });
    let ready = false;
    this.workers[seat] = worker;
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'failure') return this.onError(new Error(`service worker ${seat}: ${message.message}`));
      ready = true;
      this.earlyDeaths = 0;
      if (++this.readyCount === this.threads) for (const waiter of this.readyWaiters.splice(0)) waiter.resolve();
    });
    worker.on('error', (error) => this.onError(error));
    worker.on('exit', () => this.onExit(seat, worker, ready));
  }

  private onExit(seat: number, worker: Worker, wasReady: boolean): void {
    if (this.workers[seat] !== worker) return;
    this.workers[seat] = null;
    if (this.closing) return;
    nativeService.serviceQueueVacate(this.queueId, seat);
    if (wasReady) this.readyCount--;
    else if (++this.earlyDeaths > EARLY_DEATHS_MAX) return this.failStart(seat);
    this.restarts++;
    this.start(seat);
  }

  private failStart(seat: number): void {
    this.startError = new Error(`service worker ${seat} died ${EARLY_DEATHS_MAX + 1} times before it was ready: check serviceModule ${this.serviceModule}`);
    for (const waiter of this.readyWaiters.splice(0)) waiter.reject(this.startError);
  }
}
