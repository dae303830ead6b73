/**
 * ProcedurePool: a process's piscina pool of procedure worker threads, with
 * the process-wide bound on calls in service.
 *
 * Life: created by the ServerProcess at start (main thread), closed by it at
 * drain after the transports have stopped taking calls. Only the main thread
 * touches it. A worker thread that dies is replaced by piscina; the pool's
 * 'error' listener keeps such a death from reaching the process.
 */
import assert from 'node:assert/strict';
import { Piscina } from 'piscina';
import type { Logger } from 'pino';
import { ServerError, ServerErrorCode } from '../errors.js';
import type { ProcedureTask, ProcedureWorkerData } from './procedure-task.js';

export interface ProcedurePoolOptions {
  threads: number;
  /** Calls in service or queued; one more is refused (ERR_SERVER_BUSY). */
  maxInFlightCalls: number;
  workerData: ProcedureWorkerData;
  log: Logger;
  /** A worker thread was started to replace one that died. */
  onWorkerReplaced: () => void;
}

export class ProcedurePool {
  private readonly pool: Piscina;
  private readonly maxInFlightCalls: number;
  inFlight = 0;

  constructor(options: ProcedurePoolOptions) {
    this.maxInFlightCalls = options.maxInFlightCalls;
    this.pool = new Piscina({
      filename: new URL('./procedure-worker.js', import.meta.url).href,
      minThreads: options.threads,
      maxThreads: options.threads,
      // The queue is bounded by maxInFlightCalls already (run() refuses first); piscina's own bound backs it up.
      maxQueue: options.maxInFlightCalls,
      idleTimeout: 2 ** 31 - 1,
      workerData: options.workerData,
    });
    // Errors outside any task (a thread failing between tasks): piscina replaces the thread; without a listener
    // the pool's 'error' event would throw in the main thread and take the process down.
    this.pool.on('error', (error: unknown) => options.log.error({ err: error }, 'procedure worker thread failed'));
    let created = 0;
    this.pool.on('workerCreate', () => {
      created++;
      if (created <= options.threads) return;
      options.log.warn({ threads: this.pool.threads.length }, 'procedure worker thread replaced');
      options.onWorkerReplaced();
    });
  }

  get threads(): number {
    return this.pool.threads.length;
  }

  /** Runs one call on a worker thread; refuses it when the process is at maxInFlightCalls. */
  async run(task: ProcedureTask): Promise<unknown> {
    if (this.inFlight >= this.maxInFlightCalls) {
      throw new ServerError(ServerErrorCode.BUSY, `${this.maxInFlightCalls} calls already in service`);
    }
    this.inFlight++;
    try {
      return await this.pool.run(task);
    } finally {
      this.inFlight--;
      assert.ok(this.inFlight >= 0, 'procedure pool: more calls finished than started');
    }
  }

  /**
   * Called at drain once the transports stopped taking calls and drainTimeoutMs is spent: calls still in
   * service had their bound, so their threads are terminated (piscina's close() would wait for them).
   */
  async close(): Promise<void> {
    if (this.inFlight > 0) await this.pool.destroy();
    else await this.pool.close();
  }
}
