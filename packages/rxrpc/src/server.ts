/**
 * RxServer: an Endpoint on the main thread routing packets to channel
 * workers that run the services.
 *
 * Life: `RxServer.prepare(options)` starts the channel threads and loads the
 * services; `bind()` then takes the port (`listen` = both). `close()` stops
 * both. `close({ drainMs })` first drains: new connections
 * and new calls are aborted SERVER_BUSY while the running handlers get up to
 * drainMs to finish (their replies are sent, not waited for to be ACKed).
 * The main thread owns the endpoint and the connection table; each
 * channel's state lives in exactly one worker (see worker/channel-placement.ts
 * for the placement and worker/worker-pool.ts for how packets reach it).
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import { ChannelRecords } from './connection/channel-records.js';
import type { ConnectionInfo } from './connection/connection-info.js';
import { SerialTable } from './connection/serial-table.js';
import { Endpoint } from './endpoint/endpoint.js';
import type { DebugState } from './endpoint/debug-replies.js';
import type { DatagramTransportKind } from './endpoint/datagram-transport.js';
import { RxError } from './errors.js';
import { sumSnapshots, type CounterSnapshot } from './metrics.js';
import { checkBoolean, checkInteger, checkTransport, fillCallOptions, stripUndefined, type CallOptions, type FilledCallOptions } from './options.js';
import { RxErrorCode, SecurityIndex } from './protocol.js';
import type { PacketHeader } from './wire/codec.js';
import type { ChannelHosts } from './worker/channel-hosts.js';
import { steeringProgram } from './worker/channel-placement.js';
import { InlineChannelHost } from './worker/inline-host.js';
import { WorkerPool } from './worker/worker-pool.js';

export interface RxServerOptions {
  /** Module (URL or path) exporting `services: RxService[]`; every channel worker imports it. */
  serviceModule: string | URL;
  /** '0.0.0.0', '::' (dual stack), '127.0.0.1', '::1'... */
  address?: string;
  /** 0 picks a free port. */
  port?: number;
  /**
   * Channel worker threads; 0 hosts every channel on the thread that reads the
   * socket (no thread hop per call, handlers share that thread).
   */
  workers?: number;
  maxConnections?: number;
  connectionIdleMs?: number;
  /** Packet buffers each worker keeps pooled. */
  poolBuffersPerWorker?: number;
  /**
   * V8 young generation of each channel worker, MiB. Calls make short-lived
   * garbage; left to itself V8 grows each worker's heap towards ~80 MiB while
   * ~7 MiB is live, so a small cap keeps RSS flat.
   */
  workerYoungGenerationMb?: number;
  /**
   * SO_REUSEPORT: processes that all bind this port share its datagrams, Linux
   * keeping each peer's 4-tuple on one socket (so its connections stay in one process).
   */
  reusePort?: boolean;
  /** Bind a socket of this process's own even under node:cluster (needed with reusePort there). */
  exclusive?: boolean;
  /**
   * 'native' (default): the verbs core's socket, read with recvmmsg and written with sendmmsg,
   * one JavaScript call per batch; 'dgram': node:dgram, one callback per datagram.
   */
  transport?: DatagramTransportKind;
  call?: CallOptions;
}

/** What `onConnection` hears when the routing thread creates a server connection. */
export interface RxConnectionInfo {
  peerAddress: string;
  peerPort: number;
  epoch: number;
  /** The connection's cid, channel bits clear. */
  cid: number;
  serviceId: number;
}

/**
 * Called on the routing (main) thread when a server connection is created;
 * the callback it returns, if any, is called when that connection is reaped
 * (idle, aborted by the peer, or the server closing).
 */
export type RxConnectionListener = (info: RxConnectionInfo) => (() => void) | void;

export interface RxCloseOptions {
  /** Time running handlers get to finish while new calls are refused; 0 closes at once. */
  drainMs?: number;
}

export interface RxCloseResult {
  /** Handlers still running when the drain ended (they are terminated); 0 without a drain. */
  unfinishedHandlers: number;
}

/** How often a drain asks the workers whether handlers still run: a few polls per typical call. */
const DRAIN_POLL_MS = 20;
/** An hour: a drain longer than that is a mistake in the caller's units. */
const DRAIN_MS_MAX = 3_600_000;

interface FilledServerOptions {
  serviceModule: string;
  address: string;
  port: number;
  workers: number;
  maxConnections: number;
  connectionIdleMs: number;
  poolBuffersPerWorker: number;
  workerYoungGenerationMb: number;
  reusePort: boolean;
  exclusive: boolean;
  transport: DatagramTransportKind;
  call: FilledCallOptions;
}

const kDefaultServerOptions = Object.freeze({
  address: '0.0.0.0',
  port: 0,
  workers: Math.max(1, Math.min(4, os.availableParallelism())),
  maxConnections: 4096,
  connectionIdleMs: 600_000,
  poolBuffersPerWorker: 2048,
  workerYoungGenerationMb: 8,
  reusePort: false,
  exclusive: false,
  transport: 'native',
});

function fillServerOptions(options: RxServerOptions): FilledServerOptions {
  if (options.serviceModule === undefined) throw new RxError('ERR_RX_OPTION', 'option serviceModule is required');
  const merged = { ...kDefaultServerOptions, ...stripUndefined(options) };
  return {
    serviceModule: String(options.serviceModule),
    address: String(merged.address),
    port: checkInteger('port', merged.port, 0, 65_535),
    workers: checkInteger('workers', merged.workers, 0, 64),
    maxConnections: checkInteger('maxConnections', merged.maxConnections, 1, 1 << 20),
    connectionIdleMs: checkInteger('connectionIdleMs', merged.connectionIdleMs, 0, 86_400_000),
    poolBuffersPerWorker: checkInteger('poolBuffersPerWorker', merged.poolBuffersPerWorker, 0, 1 << 20),
    workerYoungGenerationMb: checkInteger('workerYoungGenerationMb', merged.workerYoungGenerationMb, 1, 1024),
    reusePort: checkBoolean('reusePort', merged.reusePort),
    exclusive: checkBoolean('exclusive', merged.exclusive),
    transport: checkTransport('transport', merged.transport),
    call: fillCallOptions(options.call),
  };
}

/** Runs application code from the routing thread: what it throws is reported, not propagated into routing. */
function guardListener<T>(run: () => T): T | undefined {
  try {
    return run();
  } catch (error) {
    process.emitWarning(`RxServer.onConnection listener threw: ${String(error)}`, { code: 'ERR_RX_CONNECTION_LISTENER' });
    return undefined;
  }
}

/**
 * What the server exports for monitoring (the server package turns these into
 * prom-client metrics): counters only grow; the rest are gauges.
 */
export interface RxServerStats {
  /** Summed over the endpoint and every worker: packets by type, retransmissions, BUSY, RTT, calls... */
  counters: CounterSnapshot;
  /** Gauge: connections in the table. */
  connections: number;
  /** Gauge: service handlers running now. */
  handlersRunning: number;
  /** Gauge: channels with a call in progress, per channel thread (the routing thread alone with `workers: 0`). */
  activeCallsPerWorker: number[];
  /** Gauge: pooled packet buffers free, per worker. */
  poolAvailablePerWorker: number[];
  workers: number;
}

export class RxServer {
  private readonly endpoint: Endpoint;
  private readonly hosts: ChannelHosts;
  private bound: { address: string; port: number } | undefined;
  private closing = false;
  private connectionListener: RxConnectionListener | undefined;
  /** Per live connection id; bounded by the connection table's maxConnections. */
  private readonly connectionClosers = new Map<number, () => void>();

  private constructor(filled: FilledServerOptions, hosts: ChannelHosts, serials: SerialTable, records: ChannelRecords) {
    this.hosts = hosts;
    this.endpoint = new Endpoint(
      {
        isServer: true,
        admit: (header) => this.admit(header),
        opened: (connection) => {
          hosts.open(connection.info);
          this.announceOpened(connection.info);
        },
        deliver: (connection, channel, datagram, header) => hosts.deliver(connection.info, channel, datagram, header),
        closed: (connection, reason) => {
          hosts.close(connection.info.id, reason);
          this.announceClosed(connection.info.id);
        },
        debugState: () => this.debugState(),
      },
      {
        address: filled.address,
        port: filled.port,
        maxConnections: filled.maxConnections,
        connectionIdleMs: filled.connectionIdleMs,
        reusePort: filled.reusePort,
        exclusive: filled.exclusive,
        transport: filled.transport,
        // Channel workers read their channels' packets from their own sockets of the port.
        steering: filled.workers > 0 ? { program: steeringProgram(filled.workers), members: filled.workers } : undefined,
      },
      serials,
      filled.workers > 0 ? records : undefined,
    );
  }

  /**
   * Starts the channel threads and loads the services without taking the
   * port, so a standby process can be warm before it binds (`bind()`).
   */
  static async prepare(options: RxServerOptions): Promise<RxServer> {
    const filled = fillServerOptions(options);
    const serials = new SerialTable(filled.maxConnections);
    const records = new ChannelRecords(filled.maxConnections);
    const start = { serviceModule: filled.serviceModule, serials: serials.buffer, records: records.buffer, options: filled.call, poolBuffers: filled.poolBuffersPerWorker };
    let server: RxServer | undefined;
    const send = (connectionId: number, packet: Uint8Array): void => {
      const connection = server?.endpoint.connections.byConnectionId(connectionId);
      if (connection !== undefined) server!.endpoint.sendTo(connection, packet);
    };
    const route = (datagram: Uint8Array, address: string, port: number): void => server?.endpoint.routeForwarded(datagram, address, port);
    const hosts =
      filled.workers === 0
        ? await InlineChannelHost.start(start, send, filled.transport === 'native')
        : await WorkerPool.start(filled.workers, start, { send, route }, filled.workerYoungGenerationMb);
    server = new RxServer(filled, hosts, serials, records);
    return server;
  }

  /** prepare() then bind(). */
  static async listen(options: RxServerOptions): Promise<RxServer> {
    const server = await RxServer.prepare(options);
    try {
      await server.bind();
    } catch (error) {
      await server.close();
      throw error;
    }
    return server;
  }

  /** Takes the port (reusePort/exclusive as prepared); packets flow from here on. */
  async bind(): Promise<{ address: string; port: number }> {
    assert.equal(this.bound, undefined, 'a server binds once');
    assert.ok(!this.closing, 'a closed server does not bind');
    this.bound = await this.endpoint.listen();
    // Channel workers send their replies themselves (native socket), and read their packets too when steered.
    this.hosts.attachSockets?.({ steered: this.endpoint.steered, duplicate: (member) => this.endpoint.duplicateDescriptor(member) });
    return this.bound;
  }

  get address(): string {
    assert.ok(this.bound !== undefined, 'the server is bound');
    return this.bound.address;
  }

  get port(): number {
    assert.ok(this.bound !== undefined, 'the server is bound');
    return this.bound.port;
  }

  /**
   * Watches server connections (one listener; a second call replaces it):
   * `listener` runs on the routing thread when a connection is created and
   * the callback it returns when that connection is reaped. A listener that
   * throws does not stop routing: the error becomes a process warning.
   */
  onConnection(listener: RxConnectionListener): void {
    this.connectionListener = listener;
  }

  private announceOpened(info: ConnectionInfo): void {
    if (this.connectionListener === undefined) return;
    const { peerAddress, peerPort, epoch, cid, serviceId } = info;
    const onClose = guardListener(() => this.connectionListener?.({ peerAddress, peerPort, epoch, cid, serviceId }));
    if (typeof onClose === 'function') this.connectionClosers.set(info.id, onClose);
  }

  private announceClosed(connectionId: number): void {
    const onClose = this.connectionClosers.get(connectionId);
    if (onClose === undefined) return;
    this.connectionClosers.delete(connectionId);
    guardListener(onClose);
  }

  private admit(header: PacketHeader): number | undefined {
    if (this.closing) {
      this.endpoint.counters.callsRefusedClosing += 1;
      return RxErrorCode.SERVER_BUSY;
    }
    if (header.securityIndex !== SecurityIndex.NULL) return RxErrorCode.INVALID_OPERATION;
    return this.hosts.serviceIds.includes(header.serviceId) ? undefined : RxErrorCode.INVALID_OPERATION;
  }

  /** Counters summed over the endpoint and every channel worker. */
  async stats(): Promise<RxServerStats> {
    const replies = await this.hosts.stats();
    return {
      counters: sumSnapshots([this.endpoint.counters, this.hosts.counters, ...replies.map((reply) => reply.counters)]),
      connections: this.endpoint.connections.size,
      handlersRunning: replies.reduce((sum, reply) => sum + reply.handlersRunning, 0),
      activeCallsPerWorker: replies.map((reply) => reply.activeCalls),
      poolAvailablePerWorker: replies.map((reply) => reply.poolAvailable),
      workers: this.hosts.workerThreads,
    };
  }

  private async debugState(): Promise<DebugState> {
    const replies = await this.hosts.stats();
    const counters = sumSnapshots([this.endpoint.counters, this.hosts.counters, ...replies.map((reply) => reply.counters)]);
    const running = replies.reduce((sum, reply) => sum + reply.handlersRunning, 0);
    return {
      counters,
      callsExecuted: counters.callsStarted,
      idleThreads: Math.max(0, this.hosts.size - running),
      waitingCalls: 0,
      packetsAllocated: replies.reduce((sum, reply) => sum + reply.poolAvailable, 0),
      packetsFree: replies.reduce((sum, reply) => sum + reply.poolAvailable, 0),
      serverConnections: this.endpoint.connections.size,
      clientConnections: 0,
    };
  }

  /** Closes the socket and terminates the workers, after a drain of up to `drainMs`. */
  async close(options: RxCloseOptions = {}): Promise<RxCloseResult> {
    const drainMs = checkInteger('drainMs', options.drainMs ?? 0, 0, DRAIN_MS_MAX);
    const unfinishedHandlers = drainMs > 0 && this.bound !== undefined ? await this.drain(drainMs) : 0;
    this.closing = true;
    await this.endpoint.close();
    await this.hosts.terminate();
    return { unfinishedHandlers };
  }

  /** Refuses new connections and calls, waits for the running handlers; returns how many still run. */
  private async drain(drainMs: number): Promise<number> {
    this.closing = true;
    this.hosts.refuseNewCalls();
    const deadline = performance.now() + drainMs;
    let running = await this.handlersRunning();
    // Bounded by drainMs / DRAIN_POLL_MS turns.
    while (running > 0 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
      running = await this.handlersRunning();
    }
    // One more round trip through every worker: replies a handler queued just before it
    // returned reach the socket before it closes (each worker posts them before its reply).
    await this.hosts.stats();
    return running;
  }

  private async handlersRunning(): Promise<number> {
    return (await this.hosts.stats()).reduce((sum, reply) => sum + reply.handlersRunning, 0);
  }
}
