/**
 * The fixed set of channel worker threads and the stable placement of
 * channels on them.
 *
 * Life: created by RxServer.listen on the main thread, terminated by
 * RxServer.close. Placement: channel c of the connection with id n lives on
 * worker (n + c) mod workers, for the connection's whole life — so one
 * channel's packets are handled by exactly one thread, in order, and a
 * connection's four channels spread over up to four threads.
 *
 * Inbound packets are batched per worker and flushed once per event-loop
 * turn (setImmediate), transferring each batch's buffer.
 */
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import type { ConnectionInfo } from '../connection/connection-info.js';
import { RxError } from '../errors.js';
import { CHANNELS_PER_CONNECTION } from '../protocol.js';
import type { ChannelHosts, HostStart } from './channel-hosts.js';
import type { MainToWorker, WorkerToMain } from './messages.js';
import { PacketBatchWriter, readPacketBatch } from './packet-batch.js';

/** Stats replies we wait for at once (one per rxdebug request in flight). */
const STATS_REQUESTS_MAX = 64;
const STATS_TIMEOUT_MS = 1_000;

type StatsReply = Extract<WorkerToMain, { kind: 'stats' }>;

interface PooledWorker {
  worker: Worker;
  inbox: PacketBatchWriter;
}

export interface WorkerPoolHandlers {
  /** A packet a worker wants sent to connection `connectionId`'s peer. */
  send(connectionId: number, packet: Uint8Array): void;
}

export class WorkerPool implements ChannelHosts {
  private readonly workers: PooledWorker[] = [];
  private flushScheduled = false;
  private readonly statsWaiters = new Map<number, { replies: StatsReply[]; resolve: (replies: StatsReply[]) => void }>();
  private nextStatsRequest = 1;
  private readonly handlers: WorkerPoolHandlers;
  /** Service ids the workers' service module declares (from their ready messages). */
  serviceIds: readonly number[] = [];

  private constructor(handlers: WorkerPoolHandlers) {
    this.handlers = handlers;
  }

  static async start(count: number, start: HostStart, handlers: WorkerPoolHandlers, youngGenerationMb: number): Promise<WorkerPool> {
    assert.ok(count >= 1, 'at least one channel worker');
    const pool = new WorkerPool(handlers);
    const entry = new URL('./channel-worker.js', import.meta.url);
    const ready: Promise<void>[] = [];
    for (let index = 0; index < count; index++) {
      const worker = new Worker(entry, { workerData: start, resourceLimits: { maxYoungGenerationSizeMb: youngGenerationMb } });
      pool.workers.push({ worker, inbox: new PacketBatchWriter() });
      ready.push(pool.watch(worker));
    }
    try {
      await Promise.all(ready);
    } catch (error) {
      await pool.terminate();
      throw error;
    }
    return pool;
  }

  private watch(worker: Worker): Promise<void> {
    return new Promise((resolve, reject) => {
      worker.on('message', (message: WorkerToMain) => {
        if (message.kind === 'ready') {
          this.serviceIds = message.serviceIds;
          resolve();
        }
        else if (message.kind === 'start-failed') reject(new RxError('ERR_RX_OPTION', `channel worker could not load services: ${message.message}`));
        else this.onMessage(message);
      });
      worker.once('error', reject);
    });
  }

  private onMessage(message: WorkerToMain): void {
    if (message.kind === 'send') {
      for (const entry of readPacketBatch(message.batch)) this.handlers.send(entry.connectionId, entry.packet);
    } else if (message.kind === 'stats') {
      const waiter = this.statsWaiters.get(message.requestId);
      if (waiter === undefined) return;
      waiter.replies.push(message);
      if (waiter.replies.length === this.workers.length) {
        this.statsWaiters.delete(message.requestId);
        waiter.resolve(waiter.replies);
      }
    }
  }

  get size(): number {
    return this.workers.length;
  }

  get workerThreads(): number {
    return this.workers.length;
  }

  /** The worker that owns channel `channel` of connection `connectionId`, for the connection's life. */
  placement(connectionId: number, channel: number): number {
    return (connectionId + channel) % this.workers.length;
  }

  private post(index: number, message: MainToWorker, transfer: ArrayBuffer[] = []): void {
    this.workers[index]!.worker.postMessage(message, transfer);
  }

  open(connection: ConnectionInfo): void {
    const byWorker = new Map<number, number[]>();
    for (let channel = 0; channel < CHANNELS_PER_CONNECTION; channel++) {
      const index = this.placement(connection.id, channel);
      byWorker.set(index, [...(byWorker.get(index) ?? []), channel]);
    }
    // Flush queued packets first so the open reaches each worker before this connection's packets.
    this.flush();
    for (const [index, channels] of byWorker) this.post(index, { kind: 'open', connection, channels });
  }

  close(connectionId: number, reason: string): void {
    this.flush();
    const notified = new Set<number>();
    for (let channel = 0; channel < CHANNELS_PER_CONNECTION; channel++) notified.add(this.placement(connectionId, channel));
    for (const index of notified) this.post(index, { kind: 'close', connectionId, reason });
  }

  deliver(connectionId: number, channel: number, datagram: Uint8Array): void {
    const target = this.workers[this.placement(connectionId, channel)]!;
    if (!target.inbox.add(connectionId, channel, datagram)) {
      this.flush();
      target.inbox.add(connectionId, channel, datagram);
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    this.workers.forEach((entry, index) => {
      if (entry.inbox.count === 0) return;
      const batch = entry.inbox.take();
      this.post(index, { kind: 'packets', batch }, [batch]);
    });
  }

  stats(): Promise<StatsReply[]> {
    if (this.statsWaiters.size >= STATS_REQUESTS_MAX) return Promise.resolve([]);
    const requestId = this.nextStatsRequest++;
    return new Promise((resolve) => {
      const waiter = { replies: [] as StatsReply[], resolve };
      this.statsWaiters.set(requestId, waiter);
      setTimeout(() => {
        if (this.statsWaiters.delete(requestId)) resolve(waiter.replies);
      }, STATS_TIMEOUT_MS).unref();
      this.workers.forEach((_, index) => this.post(index, { kind: 'stats', requestId }));
    });
  }

  refuseNewCalls(): void {
    this.flush();
    this.workers.forEach((_, index) => this.post(index, { kind: 'refuse-new-calls' }));
  }

  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((entry) => entry.worker.terminate()));
    this.workers.length = 0;
  }
}
