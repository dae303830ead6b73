/**
 * The fixed set of channel worker threads and the stable placement of
 * channels on them.
 *
 * Life: created by RxServer.prepare on the main thread, terminated by
 * RxServer.close. Placement (channel-placement.ts): channel c of the
 * connection with cid n lives on worker ((n >>> 2) + c) mod workers, for the
 * connection's whole life — so one channel's packets are handled by exactly
 * one thread, in order, and a connection's four channels spread over up to
 * four threads.
 *
 * With the native socket (not shared with other processes) the kernel
 * queues each call packet directly on its worker's own socket of a steered
 * SO_REUSEPORT group (attachSockets): the worker routes and sends by itself,
 * and this thread sees only connection-level packets and a new connection's
 * first datagrams, which a worker forwards. Otherwise this thread routes
 * every packet: they are batched per worker and flushed once per event-loop
 * turn (setImmediate), transferring each batch's buffer; workers then send
 * through a duplicate of the native socket's descriptor, or post their
 * packets back in batches (node:dgram) for this thread to send.
 *
 * A worker that dies after start-up (an exception outside any handler's
 * try/catch, process.exit() in a service, an out-of-memory) is replaced in
 * the same slot: the newest call of each of its channels is aborted
 * (hosted-connections.ts), the replacement gets fresh channel state for the
 * same channels, and the dead worker's last reported counters are kept so
 * counters never go backwards.
 */
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { ChannelRecords } from '../connection/channel-records.js';
import type { ConnectionInfo } from '../connection/connection-info.js';
import { SerialTable } from '../connection/serial-table.js';
import { RxError } from '../errors.js';
import { emptySnapshot, sumSnapshots, type CounterSnapshot } from '../metrics.js';
import { CHANNELS_PER_CONNECTION } from '../protocol.js';
import type { PacketHeader } from '../wire/codec.js';
import type { ChannelHosts, HostStart, ServerSockets } from './channel-hosts.js';
import { channelWorker } from './channel-placement.js';
import { HostedConnections, WORKER_DIED_ABORT_CODE } from './hosted-connections.js';
import type { MainToWorker, WorkerToMain } from './messages.js';
import { PacketBatchWriter, readPacketBatch } from './packet-batch.js';

/** Stats replies we wait for at once (one per rxdebug request in flight). */
const STATS_REQUESTS_MAX = 64;
const STATS_TIMEOUT_MS = 1_000;
/**
 * A replacement that dies before it is ready (its service module now fails
 * to load, say) is started again only after this pause, so a worker that
 * cannot live does not spin a core.
 */
const RESTART_BACKOFF_MS = 1_000;

type StatsReply = Extract<WorkerToMain, { kind: 'stats' }>;

interface PooledWorker {
  worker: Worker;
  inbox: PacketBatchWriter;
  ready: boolean;
  dead: boolean;
  /** Its counters as of its last stats reply: kept when it dies. */
  lastCounters: CounterSnapshot;
}

export interface WorkerPoolHandlers {
  /** A packet a worker wants sent to connection `connectionId`'s peer. */
  send(connectionId: number, packet: Uint8Array): void;
  /** A datagram a worker's steered socket read for a connection it did not know: route it as if read here. */
  route(datagram: Uint8Array, address: string, port: number): void;
}

export class WorkerPool implements ChannelHosts {
  private readonly workers: PooledWorker[] = [];
  private flushScheduled = false;
  private readonly statsWaiters = new Map<number, { replies: StatsReply[]; resolve: (replies: StatsReply[]) => void }>();
  private nextStatsRequest = 1;
  private readonly handlers: WorkerPoolHandlers;
  private readonly start: HostStart;
  private readonly youngGenerationMb: number;
  private readonly connections: HostedConnections;
  /** Worker restarts and the calls they aborted, plus the counters of workers that died. */
  readonly counters: CounterSnapshot = emptySnapshot();
  /** Set once every first worker is ready: deaths before that fail the start instead. */
  private started = false;
  private terminating = false;
  /** Service ids the workers' service module declares (from their ready messages). */
  serviceIds: readonly number[] = [];
  /** Set once the server socket is bound (native only): each worker's descriptor comes from it. */
  private sockets: ServerSockets | undefined;

  private constructor(handlers: WorkerPoolHandlers, start: HostStart, youngGenerationMb: number) {
    this.handlers = handlers;
    this.start = start;
    this.youngGenerationMb = youngGenerationMb;
    this.connections = new HostedConnections(new ChannelRecords(start.records), new SerialTable(start.serials), this.counters, (info, packet) => handlers.send(info.id, packet));
  }

  static async start(count: number, start: HostStart, handlers: WorkerPoolHandlers, youngGenerationMb: number): Promise<WorkerPool> {
    assert.ok(count >= 1, 'at least one channel worker');
    const pool = new WorkerPool(handlers, start, youngGenerationMb);
    const ready: Promise<void>[] = [];
    for (let index = 0; index < count; index++) {
      pool.workers.push(pool.spawn());
      ready.push(pool.watch(index, pool.workers[index]!));
    }
    try {
      await Promise.all(ready);
      pool.started = true;
    } catch (error) {
      await pool.terminate();
      throw error;
    }
    return pool;
  }

  private spawn(): PooledWorker {
    const worker = new Worker(new URL('./channel-worker.js', import.meta.url), {
      workerData: this.start,
      resourceLimits: { maxYoungGenerationSizeMb: this.youngGenerationMb },
    });
    return { worker, inbox: new PacketBatchWriter(), ready: false, dead: false, lastCounters: emptySnapshot() };
  }

  /** Resolves when the worker is ready; after that, its death replaces it (see workerDied). */
  private watch(index: number, entry: PooledWorker): Promise<void> {
    return new Promise((resolve, reject) => {
      entry.worker.on('message', (message: WorkerToMain) => {
        if (message.kind === 'ready') {
          this.serviceIds = message.serviceIds;
          entry.ready = true;
          resolve();
        } else if (message.kind === 'start-failed') reject(new RxError('ERR_RX_OPTION', `channel worker could not load services: ${message.message}`));
        else this.onMessage(entry, message);
      });
      // Both may come ('error' then 'exit'): the first replaces the worker, the second finds it replaced.
      entry.worker.once('error', (error) => {
        reject(error);
        this.workerDied(index, entry, `error: ${error.message}`);
      });
      entry.worker.once('exit', (exitCode) => {
        reject(new RxError('ERR_RX_OPTION', `channel worker exited with code ${exitCode} while starting`));
        this.workerDied(index, entry, `exit code ${exitCode}`);
      });
    });
  }

  /**
   * A worker died: the newest call of each of its channels is aborted and its
   * last counters kept; a new worker then takes its slot — and so the same
   * channels — with fresh channel state.
   */
  private workerDied(index: number, entry: PooledWorker, reason: string): void {
    if (!this.started || this.terminating || entry.dead) return;
    entry.dead = true;
    // Packets still batched for it belong to the calls it took with it: their clients get ABORTs instead.
    entry.inbox.take();
    Object.assign(this.counters, sumSnapshots([this.counters, entry.lastCounters]));
    const aborted = this.connections.abortChannels((info, channel) => this.placement(info, channel) === index);
    process.emitWarning(`rxrpc: channel worker ${index} died (${reason}); ${aborted} calls aborted with code ${WORKER_DIED_ABORT_CODE}; replacing it`);
    if (entry.ready) this.replace(index);
    else setTimeout(() => this.replace(index), RESTART_BACKOFF_MS).unref();
  }

  private replace(index: number): void {
    if (this.terminating) return;
    this.counters.workerRestarts += 1;
    const replacement = this.spawn();
    this.workers[index] = replacement;
    // A replacement that fails to start dies like any worker (workerDied), after the backoff.
    this.watch(index, replacement).catch(() => undefined);
    // Messages wait in the new worker's port until its services are loaded. Connections
    // first: the socket's queued datagrams (of dead calls among others) then find them.
    for (const info of this.connections.infos()) this.openOn(index, info);
    this.sendSocketTo(index);
  }

  /**
   * Each worker from now on owns a descriptor of the bound socket: its own
   * member of the steered group (it reads its channels' packets and sends
   * through it), or a duplicate of the routing thread's socket (it sends
   * through it). It closes it when it exits (its handle's finalizer). This
   * thread never closes one it handed out: it cannot know whether a worker
   * that died took it first, and closing it twice could close an unrelated
   * reused descriptor. So a worker dying between the post and its handling
   * of it leaks one descriptor — rare, and bounded by the restart backoff.
   * The group's members themselves stay open in the routing thread's socket
   * until it closes, so a dying worker never renumbers them.
   */
  attachSockets(sockets: ServerSockets): void {
    this.sockets = sockets;
    this.workers.forEach((_, index) => this.sendSocketTo(index));
  }

  private sendSocketTo(index: number): void {
    if (this.sockets === undefined) return;
    const { steered } = this.sockets;
    const fd = this.sockets.duplicate(steered ? 1 + index : 0);
    if (fd !== undefined) this.post(index, { kind: 'socket', fd, steered });
  }

  private onMessage(entry: PooledWorker, message: WorkerToMain): void {
    if (message.kind === 'forward') {
      this.handlers.route(new Uint8Array(message.datagram), message.address, message.port);
      // Its datagram (if routed to a channel) reaches the worker before the answer.
      this.flush();
      const index = this.workers.indexOf(entry);
      if (index >= 0 && !entry.dead) this.post(index, { kind: 'forwarded' });
    } else if (message.kind === 'send') {
      for (const packet of readPacketBatch(message.batch)) this.handlers.send(packet.connectionId, packet.packet);
    } else if (message.kind === 'stats') {
      entry.lastCounters = message.counters;
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

  /** The worker that owns channel `channel` of `connection`, for the connection's life. */
  placement(connection: ConnectionInfo, channel: number): number {
    return channelWorker(connection.cid, channel, this.workers.length);
  }

  private post(index: number, message: MainToWorker, transfer: ArrayBuffer[] = []): void {
    this.workers[index]!.worker.postMessage(message, transfer);
  }

  open(connection: ConnectionInfo): void {
    this.connections.add(connection);
    // Flush queued packets first so the open reaches each worker before this connection's packets.
    this.flush();
    for (let index = 0; index < this.workers.length; index++) this.openOn(index, connection);
  }

  /** Announces `connection` to worker `index` if it owns any of its channels. */
  private openOn(index: number, connection: ConnectionInfo): void {
    const channels: number[] = [];
    for (let channel = 0; channel < CHANNELS_PER_CONNECTION; channel++) if (this.placement(connection, channel) === index) channels.push(channel);
    if (channels.length > 0) this.post(index, { kind: 'open', connection, channels });
  }

  close(connectionId: number, reason: string): void {
    const info = this.connections.get(connectionId);
    if (info === undefined) return;
    this.connections.remove(connectionId);
    this.flush();
    const notified = new Set<number>();
    for (let channel = 0; channel < CHANNELS_PER_CONNECTION; channel++) notified.add(this.placement(info, channel));
    for (const index of notified) this.post(index, { kind: 'close', connectionId, reason });
  }

  deliver(connection: ConnectionInfo, channel: number, datagram: Uint8Array, header: PacketHeader): void {
    if (!this.connections.admit(connection, channel, header.callNumber, header.type)) return;
    const target = this.workers[this.placement(connection, channel)]!;
    if (!target.inbox.add(connection.id, channel, datagram)) {
      this.flush();
      target.inbox.add(connection.id, channel, datagram);
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
    this.terminating = true;
    await Promise.all(this.workers.map((entry) => entry.worker.terminate()));
    this.workers.length = 0;
  }
}
