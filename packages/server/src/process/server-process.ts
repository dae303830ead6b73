/**
 * ServerProcess: one server process — its transports, its procedure worker
 * threads and its metrics.
 *
 * Life: created by server-main.ts in each process the supervisor forks (or
 * directly by an embedding program); start() brings up the pool and the
 * transports, drain() (SIGTERM) stops taking work, waits for the calls in
 * service (at most drainTimeoutMs), then closes everything. Main thread.
 */
import { performance } from 'node:perf_hooks';
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
import { loadService } from '../service/definition.js';
import { ProcedurePool } from '../threads/procedure-pool.js';
import { MeteredDispatcher } from '../transports/metered-dispatcher.js';
import { startRdmaTransport } from '../transports/rdma-transport.js';
import { startTcpTransport, watchConnections } from '../transports/tcp-transport.js';
import { startUdpTransport } from '../transports/udp-transport.js';
import type { ProcessReady } from './messages.js';

/** How often drain() looks at the dispatcher's in-flight count (TCP and RDMA calls). */
const DRAIN_POLL_MS = 10;

export class ServerProcess {
  readonly log: Logger;
  private pool: ProcedurePool | undefined;
  private dispatcher: MeteredDispatcher | undefined;
  private tcp: OncRpcTcpServer | undefined;
  private udp: RxServer | undefined;
  private rdma: SvcRdmaServer | undefined;
  private stopReceivingRecords: () => void = () => {};

  constructor(
    readonly options: FilledServerOptions,
    readonly processIndex: number,
    readonly instanceId: string,
  ) {
    this.log = createLogger(options.logLevel, { role: 'server', process: processIndex });
  }

  async start(): Promise<ProcessReady> {
    const { options } = this;
    this.log.info({ sinceProcessStartMs: Math.round(performance.now()) }, 'starting');
    const service = await loadService(options.service);
    const metrics = new CallMetrics(service.program);
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
    // The transports start side by side: a restarted process serves sooner.
    const [, , rdma] = await Promise.all([this.startTcp(dispatcher), this.startUdp(common), startRdmaTransport(options, this.processIndex, dispatcher)]);
    this.rdma = rdma.server;
    if (rdma.server !== undefined) (await import('../metrics/rdma-metrics.js')).exposeRdmaMetrics(rdma.server);
    this.exposeGauges();
    return {
      kind: 'ready',
      processIndex: this.processIndex,
      pid: process.pid,
      tcpPort: this.tcp?.address().port ?? null,
      udpPort: this.udp?.port ?? null,
      rdmaPort: this.rdma?.port ?? null,
      rdmaOff: rdma.reason ?? null,
    };
  }

  private async startTcp(dispatcher: MeteredDispatcher): Promise<void> {
    const { options } = this;
    if (!options.transports.includes('tcp')) return;
    const tcp = await startTcpTransport(options, dispatcher).catch((error) => Promise.reject(addressError(error, 'tcpPort', options.host, options.tcpPort)));
    this.tcp = tcp;
    this.log.info({ sinceProcessStartMs: Math.round(performance.now()) }, 'tcp listening');
    watchConnections(tcp, this.log);
    exposeTcpMetrics(tcp);
  }

  private async startUdp(module: Parameters<typeof startUdpTransport>[1]): Promise<void> {
    const { options } = this;
    if (!options.transports.includes('udp')) return;
    const udp = await startUdpTransport(options, module).catch((error) => Promise.reject(addressError(error, 'udpPort', options.host, options.udpPort)));
    this.udp = udp;
    this.log.info({ sinceProcessStartMs: Math.round(performance.now()) }, 'udp listening');
    exposeRxMetrics(udp);
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
