/**
 * SvcRdmaServer: listens for RPC-over-RDMA connections (rdma_cm, port 20049 by
 * default) and serves an ONC RPC dispatcher on them.
 *
 * Life: `SvcRdmaServer.listen()` opens the listener; each connect request gets
 * a VerbsConnection (QP, CQs, Receives posted to the credit grant) and is
 * accepted with our RFC 8797 private data; connections leave the table when
 * their teardown is done. `close()` stops listening, disconnects every
 * connection, waits for their teardowns, stops the service pool and closes the
 * devices. Main thread.
 */
import { listen, type ConnectionRequest, type Listener } from '@roce-rpc/verbs';
import { decodeConnectPrivateData, encodeConnectPrivateData } from './header/private_data.js';
import { fillSvcRdmaOptions, type FilledSvcRdmaOptions, type SvcRdmaOptions } from './options.js';
import { ServicePool } from './transport/service_pool.js';
import { EventLoopPoller } from './transport/completion_poller.js';
import type { CallHandler } from './transport/transport.js';
import { VerbsConnection } from './transport/verbs_connection.js';
import { DRAIN_BATCH_BUCKETS, type DrainPoint } from './transport/send_context.js';
import { OpenDevices } from './transport/open_devices.js';
import { OpenConnections } from './transport/open_connections.js';

export interface SvcRdmaServerOptions extends SvcRdmaOptions {
  /** Concurrent RPCs in service (the nfsd thread count). Default 4. */
  workers?: number;
  /** Told about internal errors of a transport (it is closed); default: ignored. */
  onError?: (error: unknown) => void;
}

/** RDMA Reads a client may have outstanding against us, and we against it (Linux: svcrdma_ord). */
const READ_DEPTH = 16;
const DEFAULT_WORKERS = 4;

/** What the server holds right now; all three return to 0 once every client has gone. */
export interface SvcRdmaGauges {
  connections: number;
  /** Send contexts in flight or awaiting release, over open connections. */
  sendContextsInUse: number;
  /**
   * Memory registrations open, including those of closed connections whose last RPC was still
   * being served at teardown (its pulled WRITE data is released when the RPC ends).
   */
  openRegistrations: number;
}

export interface SvcRdmaServerMetrics {
  accepted: number;
  closed: number;
}

/**
 * Server-wide cumulative counters: open connections' counts plus closed
 * connections' final counts (folded at their teardown), so they never go down
 * and a connection nobody sampled still counts.
 */
export interface SvcRdmaServerCounters extends SvcRdmaServerMetrics {
  calls: number;
  errorReplies: number;
  selfEnqueues: number;
  sqWaits: number;
  emptyReceives: number;
  sendContextAllocations: number;
  sendContextsExhausted: number;
  failedSends: number;
  lostSends: number;
  drains: Record<DrainPoint, number>;
  released: Record<DrainPoint, number>;
  /** Drain batch sizes, buckets as DRAIN_BATCH_BUCKETS. */
  batchSizes: number[];
}

export class SvcRdmaServer {
  readonly connections = new OpenConnections<VerbsConnection>();
  readonly pool: ServicePool;
  readonly poller: EventLoopPoller;
  readonly metrics: SvcRdmaServerMetrics = { accepted: 0, closed: 0 };
  /** Closed connections that still held registrations at teardown; bounded by `metrics.closed`, pruned by gauges(). */
  private readonly closedHolding = new Set<VerbsConnection>();
  /** Final counts of closed connections, folded at teardown. */
  private readonly closedCounts = emptyCounts();
  private readonly devices = new OpenDevices();

  private constructor(
    private readonly listener: Listener,
    private readonly handler: CallHandler,
    readonly options: FilledSvcRdmaOptions,
    workers: number,
    onError: (error: unknown) => void,
  ) {
    this.pool = new ServicePool(workers, onError);
    this.poller = new EventLoopPoller(options.receiveBurstWindowMs);
    listener.on('connection', (request) => void this.accept(request).catch(onError));
  }

  static listen(handler: CallHandler, options: SvcRdmaServerOptions = {}): SvcRdmaServer {
    const filled = fillSvcRdmaOptions(options);
    const listener = listen({ address: filled.address, port: filled.port });
    return new SvcRdmaServer(listener, handler, filled, options.workers ?? DEFAULT_WORKERS, options.onError ?? (() => {}));
  }

  get port(): number {
    return this.listener.port;
  }

  private async accept(request: ConnectionRequest): Promise<void> {
    const { cmId } = request;
    const { device, protectionDomain } = this.devices.get(cmId.deviceName);
    const peer = decodeConnectPrivateData(request.privateData);
    const connection = new VerbsConnection(cmId, device, protectionDomain, this.options, peer, this.handler, this.pool, this.poller, (closed) => {
      this.connections.delete(closed);
      this.metrics.closed++;
      addCounts(this.closedCounts, closed);
      if (closed.openRegistrations > 0) this.closedHolding.add(closed);
    });
    this.connections.add(connection);
    this.metrics.accepted++;
    const inline = this.options.receiveInlineBytes;
    await cmId.accept({
      privateData: encodeConnectPrivateData({ sendBytes: inline, receiveBytes: inline, remoteInvalidate: false }),
      responderResources: Math.min(READ_DEPTH, request.initiatorDepth || 1),
      initiatorDepth: Math.min(READ_DEPTH, request.responderResources || 1),
    });
  }

  gauges(): SvcRdmaGauges {
    let sendContextsInUse = 0;
    let openRegistrations = 0;
    for (const connection of this.closedHolding) {
      if (connection.openRegistrations === 0) this.closedHolding.delete(connection);
      openRegistrations += connection.openRegistrations;
    }
    for (const connection of this.connections) {
      sendContextsInUse += connection.transport.sendContexts.metrics.inUse;
      openRegistrations += connection.openRegistrations;
    }
    return { connections: this.connections.size, sendContextsInUse, openRegistrations };
  }

  /** Cumulative counters over every connection, open and closed. */
  counters(): SvcRdmaServerCounters {
    const counts = emptyCounts();
    addTotals(counts, this.closedCounts);
    for (const connection of this.connections) addCounts(counts, connection);
    return { ...this.metrics, ...counts };
  }

  /** Resolves once no connection is left (at once when there is none). */
  whenIdle(): Promise<void> {
    return this.connections.whenEmpty();
  }

  async close(): Promise<void> {
    this.listener.close();
    await this.connections.disconnectAll();
    await this.pool.close();
    this.poller.close();
    this.devices.closeAll();
  }
}

type ConnectionCounts = Omit<SvcRdmaServerCounters, keyof SvcRdmaServerMetrics>;

function emptyCounts(): ConnectionCounts {
  const byPoint = (): Record<DrainPoint, number> => ({ 'between-rpcs': 0, 'self-enqueue': 0, 'empty-free-list': 0, 'sq-wait': 0, teardown: 0 });
  return {
    calls: 0,
    errorReplies: 0,
    selfEnqueues: 0,
    sqWaits: 0,
    emptyReceives: 0,
    sendContextAllocations: 0,
    sendContextsExhausted: 0,
    failedSends: 0,
    lostSends: 0,
    drains: byPoint(),
    released: byPoint(),
    batchSizes: DRAIN_BATCH_BUCKETS.map(() => 0),
  };
}

function addCounts(into: ConnectionCounts, connection: VerbsConnection): void {
  const transport = connection.transport.metrics;
  const pool = connection.transport.sendContexts.metrics;
  addTotals(into, {
    calls: transport.calls,
    errorReplies: transport.errorReplies,
    selfEnqueues: transport.selfEnqueues,
    sqWaits: transport.sqWaits,
    emptyReceives: transport.emptyReceives,
    sendContextAllocations: pool.allocations,
    sendContextsExhausted: pool.exhausted,
    failedSends: pool.failedSends,
    lostSends: pool.lostSends,
    drains: pool.drains,
    released: pool.released,
    batchSizes: pool.batchSizes,
  });
}

function addTotals(into: ConnectionCounts, from: ConnectionCounts): void {
  for (const key of ['calls', 'errorReplies', 'selfEnqueues', 'sqWaits', 'emptyReceives', 'sendContextAllocations', 'sendContextsExhausted', 'failedSends', 'lostSends'] as const) {
    into[key] += from[key];
  }
  for (const point of Object.keys(into.drains) as DrainPoint[]) {
    into.drains[point] += from.drains[point];
    into.released[point] += from.released[point];
  }
  from.batchSizes.forEach((count, bucket) => (into.batchSizes[bucket]! += count));
}
