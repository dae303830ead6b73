/**
 * SvcRdmaThreadedServer: RPC-over-RDMA served by worker threads (the nfsd
 * model). The main thread keeps only the connection manager: it listens,
 * creates each connection's native service transport before accepting, and
 * tears connections down in the seed's order (ThreadedConnection). The
 * `threads` workers (WorkerPool) run the svc_recv loop over every transport:
 * take a transport with work from the native service queue, receive the
 * calls queued on it (up to `callsPerTake`), let others take the transport,
 * process them with the service module's CallHandler, reply, release (drain). Completions are routed by an idle
 * worker (the native poller role); those no worker got to (every worker busy
 * in a procedure) by the service queue's native backstop thread within 10-40 ms
 * (crates/verbs service_backstop.rs), not by this thread.
 *
 * Life: `SvcRdmaThreadedServer.listen()` starts the workers and resolves once
 * each loaded the service module; `close()` stops listening, disconnects every
 * connection, waits for their teardowns, stops the workers, closes the devices.
 * Main thread.
 */
import { listen, type ConnectionRequest, type Listener } from '@roce-rpc/verbs';
import { decodeConnectPrivateData, encodeConnectPrivateData } from '../header/private_data.js';
import { fillSvcRdmaThreadsOptions, type FilledSvcRdmaThreadsOptions, type SvcRdmaThreadsOptions } from '../options.js';
import type { SvcRdmaGauges, SvcRdmaServerMetrics } from '../server.js';
import { nativeService, type NativeTransportMetrics, type ServiceQueueStats } from './native_service.js';
import { ThreadedConnection } from './threaded_connection.js';
import { WorkerPool, type WorkerPoolMetrics } from './worker_pool.js';
import { OpenDevices } from '../transport/open_devices.js';
import { OpenConnections } from '../transport/open_connections.js';

/** RDMA Reads a client may have outstanding against us, and we against it (Linux: svcrdma_ord). */
const READ_DEPTH = 16;

export interface SvcRdmaThreadedServerOptions extends SvcRdmaThreadsOptions {
  /** Told about internal errors (a transport was closed, a worker died); default: ignored. */
  onError?: (error: unknown) => void;
}

/** Counters summed over every worker thread and every transport, open and closed (cumulative). */
export interface SvcRdmaThreadsMetrics extends SvcRdmaServerMetrics {
  workers: WorkerPoolMetrics;
  transports: Omit<NativeTransportMetrics, 'inUse' | 'chunkBuffersInUse' | 'postedReceives' | 'openRegistrations' | 'leakedContexts' | 'flags' | 'queuedReceives' | 'releasePending'>;
  queue: ServiceQueueStats;
}

/** The main-thread server's gauges, plus the chunk buffers taken (read buffers held by calls, write buffers by undrained replies). */
export interface SvcRdmaThreadsGauges extends SvcRdmaGauges {
  chunkBuffersInUse: number;
}

export class SvcRdmaThreadedServer {
  readonly connections = new OpenConnections<ThreadedConnection>();
  private readonly counts: SvcRdmaServerMetrics = { accepted: 0, closed: 0 };
  /** Final native counters of closed connections, folded. */
  private readonly closedTotals: SvcRdmaThreadsMetrics['transports'] = emptyTransportTotals();
  private readonly devices = new OpenDevices();

  private constructor(
    private readonly listener: Listener,
    readonly pool: WorkerPool,
    readonly options: FilledSvcRdmaThreadsOptions,
    private readonly onError: (error: unknown) => void,
  ) {
    listener.on('connection', (request) => void this.accept(request).catch(onError));
  }

  static async listen(options: SvcRdmaThreadedServerOptions): Promise<SvcRdmaThreadedServer> {
    const filled = fillSvcRdmaThreadsOptions(options);
    const onError = options.onError ?? (() => {});
    const pool = new WorkerPool(filled.threads, filled.callsPerTake, filled.serviceModule, filled.serviceOptions, onError);
    try {
      await pool.ready();
    } catch (error) {
      await pool.close();
      throw error;
    }
    const listener = listen({ address: filled.address, port: filled.port });
    return new SvcRdmaThreadedServer(listener, pool, filled, onError);
  }

  get port(): number {
    return this.listener.port;
  }

  private async accept(request: ConnectionRequest): Promise<void> {
    const { cmId } = request;
    const { protectionDomain } = this.devices.get(cmId.deviceName);
    const peer = decodeConnectPrivateData(request.privateData);
    let connection: ThreadedConnection;
    try {
      connection = new ThreadedConnection(cmId, protectionDomain, this.pool.queueId, this.options, peer, (closed) => this.onClosed(closed));
    } catch (error) {
      // No transport (the device refused a CQ, QP or registration): refuse the client, keep serving others.
      cmId.reject();
      cmId.close();
      throw error;
    }
    this.connections.add(connection);
    this.counts.accepted++;
    const inline = this.options.receiveInlineBytes;
    await cmId.accept({
      privateData: encodeConnectPrivateData({ sendBytes: inline, receiveBytes: inline, remoteInvalidate: false }),
      responderResources: Math.min(READ_DEPTH, request.initiatorDepth || 1),
      initiatorDepth: Math.min(READ_DEPTH, request.responderResources || 1),
    });
  }

  private onClosed(connection: ThreadedConnection): void {
    this.connections.delete(connection);
    this.counts.closed++;
    addTransportTotals(this.closedTotals, connection.metrics());
    this.pool.transportGone(connection.transportId);
  }

  /** Cumulative counters: workers, every transport (open and closed), the service queue. */
  metrics(): SvcRdmaThreadsMetrics {
    const transports = emptyTransportTotals();
    addTransportTotals(transports, this.closedTotals);
    for (const connection of this.connections) addTransportTotals(transports, connection.metrics());
    return { ...this.counts, workers: this.pool.metrics(), transports, queue: nativeService.serviceQueueStats(this.pool.queueId) };
  }

  /** What the server holds right now; all four return to 0 once every client has gone. */
  gauges(): SvcRdmaThreadsGauges {
    let sendContextsInUse = 0;
    let openRegistrations = 0;
    let chunkBuffersInUse = 0;
    for (const connection of this.connections) {
      const metrics = connection.metrics();
      sendContextsInUse += metrics.inUse;
      openRegistrations += metrics.openRegistrations;
      chunkBuffersInUse += metrics.chunkBuffersInUse;
    }
    return { connections: this.connections.size, sendContextsInUse, openRegistrations, chunkBuffersInUse };
  }

  whenIdle(): Promise<void> {
    return this.connections.whenEmpty();
  }

  async close(): Promise<void> {
    this.listener.close();
    await this.connections.disconnectAll();
    await this.pool.close();
    this.devices.closeAll();
  }
}

function emptyTransportTotals(): SvcRdmaThreadsMetrics['transports'] {
  return {
    receives: 0,
    emptyReceives: 0,
    selfEnqueues: 0,
    sqWaits: 0,
    allocations: 0,
    exhausted: 0,
    failedSends: 0,
    lostSends: 0,
    droppedReplies: 0,
    readCalls: 0,
    readBytes: 0,
    readFailures: 0,
    writeReplies: 0,
    writtenBytes: 0,
    drains: {},
    released: {},
    batchSizes: [],
  };
}

function addTransportTotals(into: SvcRdmaThreadsMetrics['transports'], from: SvcRdmaThreadsMetrics['transports']): void {
  const counters = ['receives', 'emptyReceives', 'selfEnqueues', 'sqWaits', 'allocations', 'exhausted', 'failedSends', 'lostSends', 'droppedReplies', 'readCalls', 'readBytes', 'readFailures', 'writeReplies', 'writtenBytes'] as const;
  for (const key of counters) into[key] += from[key];
  for (const [point, count] of Object.entries(from.drains)) into.drains[point] = (into.drains[point] ?? 0) + count;
  for (const [point, count] of Object.entries(from.released)) into.released[point] = (into.released[point] ?? 0) + count;
  from.batchSizes.forEach((count, bucket) => (into.batchSizes[bucket] = (into.batchSizes[bucket] ?? 0) + count));
}
