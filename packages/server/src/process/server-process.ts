/**
 * ServerProcess: one server process — its transports, its procedure worker
 * threads and its metrics.
 *
 * Life: created by server-main.ts in each process the supervisor forks (or
 * directly by an embedding program). prepare() does everything that takes
 * no port — the service imported, the procedure threads and the RxRPC
 * channel threads started, the TCP server object made — and serve() then
 * takes the ports: a warm spare prepares at boot and serves when the
 * supervisor hands it a slot, so replacing a dead process costs the binds.
 * start() is both. drain() (SIGTERM) stops taking work, waits for the calls
 * in service (at most drainTimeoutMs), then closes everything. Main thread.
 */
import { performance } from 'node:perf_hooks';
import type { NfsServer } from '@roce-rpc/nfs3';
import type { OncRpcTcpServer } from '@roce-rpc/oncrpc';
import type { RxServer } from '@roce-rpc/rxrpc';
import type { SvcRdmaServer } from '@roce-rpc/svcrdma';
import type { Logger } from 'pino';
import type { FilledServerOptions } from '../config/options.js';
import { ServerError, ServerErrorCode } from '../errors.js';
import { createLogger } from '../log/logger.js';
import { receiveCallRecords } from '../metrics/call-events.js';
import { CallMetrics } from '../metrics/call-metrics.js';
import { exposeRxMetrics, exposeTcpMetrics } from '../metrics/protocol-metrics.js';
import { startNfsExport } from '../nfs/nfs-export.js';
import { loadService } from '../service/definition.js';
import { ProcedurePool } from '../threads/procedure-pool.js';
import { MeteredDispatcher } from '../transports/metered-dispatcher.js';
import { startRdmaTransport } from '../transports/rdma-transport.js';
import { createTcpTransport, watchConnections } from '../transports/tcp-transport.js';
import { prepareUdpTransport, watchRxConnections } from '../transports/udp-transport.js';
import type { ProcessReady } from './messages.js';

/** How often drain() looks at the dispatcher's in-flight count (TCP and RDMA calls). */
const DRAIN_POLL_MS = 10;

export class ServerProcess {
  /** Bound to `process` (the slot index) once serve() knows it: a spare prepares before it has one. */
  readonly log: Logger;
  private pool: ProcedurePool | undefined;
  private dispatcher: MeteredDispatcher | undefined;
  private tcp: OncRpcTcpServer | undefined;
  private udp: RxServer | undefined;
  private rdma: SvcRdmaServer | undefined;
  private nfs: NfsServer | undefined;
  private callMetrics: CallMetrics | undefined;
  private stopReceivingRecords: () => void = () => {};

  constructor(
    readonly options: FilledServerOptions,
    readonly instanceId: string,
  ) {
    this.log = createLogger(options.logLevel, { role: 'server' });
  }

  async start(processIndex: number): Promise<ProcessReady> {
    await this.prepare();
    return this.serve(processIndex);
  }

  /** Everything but the ports: threads started, service imported in each, metrics registered. */
  async prepare(): Promise<void> {
    const { options } = this;
    const service = await loadService(options.service);
    const metrics = new CallMetrics(service.program);
    this.callMetrics = metrics;
    this.stopReceivingRecords = receiveCallRecords((call) => metrics.record(call));
    const common = { service: options.service, serviceOptions: options.serviceOptions, instanceId: this.instanceId, logLevel: options.logLevel };
    this.pool = new ProcedurePool({
      threads: options.threads,
      maxInFlightCalls: options.maxInFlightCalls,
      workerData: common,
      log: this.log,
      onWorkerReplaced: () => metrics.workerThreadsReplaced.inc(),
    });
    const dispatcher = new MeteredDispatcher(service, this.pool, metrics, this.log);
    this.dispatcher = dispatcher;
    if (options.transports.includes('tcp')) {
      this.tcp = createTcpTransport(options, dispatcher);
      watchConnections(this.tcp, this.log);
      exposeTcpMetrics(this.tcp);
    }
    if (options.transports.includes('udp')) {
      this.udp = await prepareUdpTransport(options, common);
      watchRxConnections(this.udp, this.log);
      exposeRxMetrics(this.udp);
    }
    this.exposeGauges();
  }

  /** Takes the ports, side by side (a replacement serves sooner); RDMA only in its owner process. */
  async serve(processIndex: number): Promise<ProcessReady> {
    const { options } = this;
    this.log.setBindings({ process: processIndex });
    this.log.info({ sinceProcessStartMs: Math.round(performance.now()) }, 'starting');
    const [, , rdma, nfs] = await Promise.all([
      this.listenTcp(),
      this.bindUdp(),
      startRdmaTransport(options, processIndex, this.dispatcher!),
      startNfsExport(options, processIndex, this.callMetrics!, this.log),
    ]);
    this.rdma = rdma.server;
    this.nfs = nfs.server;
    const rdmaServers = [rdma.server, nfs.server?.rdmaServer ?? undefined, nfs.server?.threadedRdmaServer ?? undefined].filter((server) => server !== undefined);
    if (rdmaServers.length > 0) (await import('../metrics/rdma-metrics.js')).exposeRdmaMetrics(rdmaServers);
    return {
      kind: 'ready',
      processIndex,
      pid: process.pid,
      tcpPort: this.tcp?.address().port ?? null,
      udpPort: this.udp?.port ?? null,
      rdmaPort: this.rdma?.port ?? null,
      rdmaOff: rdma.reason ?? null,
      nfs: nfs.ports ?? null,
      nfsOff: nfs.reason ?? null,
    };
  }

  private async listenTcp(): Promise<void> {
    if (this.tcp === undefined) return;
    const { options } = this;
    await this.tcp.listen().catch((error) => Promise.reject(addressError(error, 'tcpPort', options.host, options.tcpPort)));
    this.log.info({ sinceProcessStartMs: Math.round(performance.now()) }, 'tcp listening');
  }

  private async bindUdp(): Promise<void> {
    if (this.udp === undefined) return;
    const { options } = this;
    await this.udp.bind().catch((error) => Promise.reject(addressError(error, 'udpPort', options.host, options.udpPort)));
    this.log.info({ sinceProcessStartMs: Math.round(performance.now()) }, 'udp listening');
  }

  private exposeGauges(): void {
    CallMetrics.sampled('rocerpc_connections', 'Open connections, by transport', ['transport'], async (gauge) => {
      gauge.reset();
      if (this.tcp !== undefined) gauge.set({ transport: 'tcp' }, this.tcp.connectionCount);
      if (this.udp !== undefined) gauge.set({ transport: 'udp' }, (await this.udp.stats()).connections);
      if (this.rdma !== undefined) gauge.set({ transport: 'rdma' }, this.rdma.connections.size);
    });
    CallMetrics.sampled('rocerpc_procedure_threads', 'Procedure worker threads alive', [], (gauge) => gauge.set(this.pool?.threads ?? 0));
    // TCP and RDMA calls share the dispatcher and its count; RxRPC counts its running handlers.
    CallMetrics.sampled('rocerpc_calls_in_flight', 'Calls in service, by transport', ['transport'], async (gauge) => {
      gauge.reset();
      gauge.set({ transport: 'tcp_rdma' }, this.dispatcher?.inFlight ?? 0);
      if (this.udp !== undefined) gauge.set({ transport: 'udp' }, (await this.udp.stats()).handlersRunning);
    });
  }

  /** Waits until the dispatcher (TCP and RDMA calls) is idle or the deadline passes; returns its in-flight count. */
  private async dispatcherIdle(deadline: number): Promise<number> {
    // Bounded by drainTimeoutMs / DRAIN_POLL_MS turns.
    while ((this.dispatcher?.inFlight ?? 0) > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
    return this.dispatcher?.inFlight ?? 0;
  }

  /**
   * Stops taking work, lets calls in service finish (bounded by drainTimeoutMs), closes
   * everything. TCP and UDP drain themselves: TCP connections read no new calls and close
   * once answered; RxRPC aborts new calls SERVER_BUSY while its handlers finish. RDMA
   * closes once the dispatcher it shares with TCP is idle.
   */
  async drain(): Promise<{ unfinishedCalls: number }> {
    const drainMs = this.options.drainTimeoutMs;
    this.tcp?.stopAccepting();
    const [dispatched, udp] = await Promise.all([
      this.dispatcherIdle(Date.now() + drainMs),
      this.udp?.close({ drainMs }),
      this.tcp?.close({ drainMs }),
      this.nfs?.close({ drainMs }),
    ]);
    await this.rdma?.close();
    await this.pool?.close();
    this.stopReceivingRecords();
    const unfinished = dispatched + (udp?.unfinishedHandlers ?? 0);
    this.log.info({ unfinishedCalls: unfinished }, 'drained');
    return { unfinishedCalls: unfinished };
  }
}

function addressError(error: unknown, field: string, host: string, port: number): unknown {
  if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') return error;
  return new ServerError(ServerErrorCode.ADDRESS_IN_USE, `${field}: ${host}:${port} is already in use`, field);
}
