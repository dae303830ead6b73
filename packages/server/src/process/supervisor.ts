/**
 * Supervisor: the node:cluster primary. It forks `processes` server
 * processes, owns the shared TCP listening socket (cluster hands accepted
 * connections to the processes round-robin) and the /metrics endpoint, and
 * restarts a process that dies, with backoff.
 *
 * One more process, the warm spare, is kept booted but not serving: when a
 * process dies the spare takes its slot at once (it only has to open the
 * transports), and a new spare is forked once it serves.
 *
 * Life: created by the CLI; start() resolves once every process is ready
 * (or rejects with the first start failure, after stopping the others);
 * stop() (SIGTERM/SIGINT) sends SIGTERM to every process, waits for them to
 * drain (drainTimeoutMs plus a grace period, then SIGKILL) and closes the
 * endpoint. Main thread of the primary.
 */
import assert from 'node:assert/strict';
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { FilledServerOptions } from '../config/options.js';
import { ServerError, ServerErrorCode } from '../errors.js';
import { createLogger, type Logger } from '../log/logger.js';
import { MetricsEndpoint } from '../metrics/metrics-endpoint.js';
import { ENV_FILLED_OPTIONS, ENV_INSTANCE_ID, ENV_PROCESS_INDEX, SPARE_PROCESS_INDEX, isProcessMessage, type ActivateSpare, type ProcessReady } from './messages.js';

/** A process that served at least this long before dying starts over at the first backoff step. */
const STABLE_LIFETIME_MS = 10_000;
/** After drainTimeoutMs, how long a process may take to close and exit before SIGKILL. */
const EXIT_GRACE_MS = 2_000;

interface Slot {
  index: number;
  worker: Worker | undefined;
  /** When the slot's process started serving (when it was attached, until it serves): its lifetime for the backoff. */
  startedAt: number;
  backoffMs: number;
  ready: ProcessReady | undefined;
}

export interface Listening {
  tcp: string | null;
  udp: string | null;
  rdma: string;
  metrics: string;
  processes: ProcessReady[];
}

export class Supervisor {
  readonly log: Logger;
  readonly metrics = new MetricsEndpoint(() => this.slots.flatMap((slot) => (slot.ready !== undefined && slot.worker !== undefined ? [slot.worker] : [])));
  private readonly slots: Slot[];
  private readonly instanceId = String(process.pid);
  private stopping = false;
  private started = false;
  private startWaiter: { resolve: () => void; reject: (error: Error) => void } | undefined;
  private spare: Worker | undefined;
  /** The spare has booted and listens for its activation. */
  private spareWaiting = false;

  constructor(readonly options: FilledServerOptions) {
    this.log = createLogger(options.logLevel, { role: 'supervisor' });
    this.slots = Array.from({ length: options.processes }, (_, index) => ({ index, worker: undefined, startedAt: 0, backoffMs: 0, ready: undefined }));
    cluster.setupPrimary({ exec: fileURLToPath(new URL('./server-main.js', import.meta.url)) });
    // Round-robin accept in the primary: every process gets connections even when one is busy.
    cluster.schedulingPolicy = cluster.SCHED_RR;
  }

  async start(): Promise<Listening> {
    const metricsAddress = await this.metrics.listen(this.options.metricsHost, this.options.metricsPort).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EADDRINUSE') throw error;
      throw new ServerError(ServerErrorCode.ADDRESS_IN_USE, `metricsPort: ${this.options.metricsHost}:${this.options.metricsPort} is already in use`, 'metricsPort');
    });
    const allReady = new Promise<void>((resolve, reject) => (this.startWaiter = { resolve, reject }));
    for (const slot of this.slots) this.fork(slot);
    try {
      await allReady;
    } catch (error) {
      await this.stop();
      throw error;
    }
    this.started = true;
    this.forkSpare();
    const ready = this.slots.map((slot) => slot.ready!);
    const first = ready[0]!;
    const rdmaOwner = ready.find((process) => process.rdmaPort !== null);
    return {
      tcp: first.tcpPort === null ? null : `${this.options.host}:${first.tcpPort}`,
      udp: first.udpPort === null ? null : `${this.options.host}:${first.udpPort}`,
      rdma: rdmaOwner === undefined ? `off (${first.rdmaOff})` : `${this.options.host}:${rdmaOwner.rdmaPort}`,
      metrics: `http://${this.options.metricsHost}:${metricsAddress.port}/metrics`,
      processes: ready,
    };
  }

  private environment(processIndex: string): NodeJS.ProcessEnv {
    return { [ENV_PROCESS_INDEX]: processIndex, [ENV_FILLED_OPTIONS]: JSON.stringify(this.options), [ENV_INSTANCE_ID]: this.instanceId };
  }

  private fork(slot: Slot): void {
    this.attach(slot, cluster.fork(this.environment(String(slot.index))));
  }

  private forkSpare(): void {
    if (this.stopping || this.spare !== undefined) return;
    const spare = cluster.fork(this.environment(SPARE_PROCESS_INDEX));
    this.spare = spare;
    this.spareWaiting = false;
    const onMessage = (message: unknown): void => {
      if (!isProcessMessage(message) || message.kind !== 'spare-waiting') return;
      spare.off('message', onMessage);
      if (this.spare !== spare) return;
      this.spareWaiting = true;
      this.log.info({ sparePid: spare.process.pid }, 'warm spare ready');
    };
    spare.on('message', onMessage);
    spare.once('exit', () => {
      if (this.spare === spare) this.spare = undefined;
    });
  }

  /** Gives `slot` to the warm spare if there is one; false when a process must be forked. */
  private activateSpare(slot: Slot): boolean {
    const spare = this.spare;
    if (spare === undefined || spare.isDead() || !this.spareWaiting) return false;
    this.spare = undefined;
    this.spareWaiting = false;
    this.attach(slot, spare);
    spare.send({ kind: 'activate', processIndex: slot.index } satisfies ActivateSpare);
    return true;
  }

  private attach(slot: Slot, worker: Worker): void {
    assert.ok(slot.worker === undefined || slot.worker.isDead(), `slot ${slot.index} already has a live process`);
    slot.ready = undefined;
    slot.startedAt = Date.now();
    slot.worker = worker;
    worker.on('message', (message: unknown) => {
      if (!isProcessMessage(message) || message.kind === 'spare-waiting') return;
      if (message.kind === 'start-failed') {
        this.startWaiter?.reject(new ServerError(message.code as ServerErrorCode, message.message));
        return;
      }
      slot.ready = message;
      // A slow boot (seconds on a loaded machine) is not a stable life: a crash right after serving is quick.
      slot.startedAt = Date.now();
      this.log.info({ process: slot.index, serverPid: message.pid }, 'server process ready');
      this.metrics.processes.set(this.slots.filter((each) => each.ready !== undefined).length);
      if (!this.started && this.slots.every((each) => each.ready !== undefined)) this.startWaiter?.resolve();
      // The next spare boots once this process serves, so the two do not compete for the CPU.
      if (this.started) this.forkSpare();
    });
    worker.on('exit', (code, signal) => this.exited(slot, worker, code, signal));
  }

  private exited(slot: Slot, worker: Worker, code: number, signal: string | null): void {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    slot.ready = undefined;
    this.metrics.processes.set(this.slots.filter((each) => each.ready !== undefined).length);
    if (this.stopping) return;
    if (!this.started) {
      this.startWaiter?.reject(new ServerError(ServerErrorCode.START_FAILED, `server process ${slot.index} exited during start (code ${code}, signal ${signal})`));
      return;
    }
    // The first death restarts at once (the warm spare has already booted); quick deaths after it wait
    // restartBackoffMs, doubling up to restartBackoffMaxMs, so a crash loop cannot spin; a long life starts over.
    if (Date.now() - slot.startedAt >= STABLE_LIFETIME_MS) slot.backoffMs = 0;
    const delay = slot.backoffMs;
    slot.backoffMs = Math.min(Math.max(this.options.restartBackoffMs, slot.backoffMs * 2), this.options.restartBackoffMaxMs);
    this.log.warn({ process: slot.index, serverPid: worker.process.pid, code, signal, restartInMs: delay }, 'server process died; restarting');
    this.metrics.restarts.inc();
    setTimeout(() => {
      if (this.stopping) return;
      if (!this.activateSpare(slot)) this.fork(slot);
    }, delay);
  }

  /** SIGTERM to every process, wait for them to drain and exit (bounded), close /metrics. */
  async stop(): Promise<void> {
    this.stopping = true;
    const workers = [...this.slots.map((slot) => slot.worker), this.spare];
    const exits = workers.flatMap((worker) => {
      if (worker === undefined || worker.isDead()) return [];
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.process.kill('SIGTERM');
      const killer = setTimeout(() => worker.process.kill('SIGKILL'), this.options.drainTimeoutMs + EXIT_GRACE_MS);
      return [exited.finally(() => clearTimeout(killer))];
    });
    await Promise.all(exits);
    await this.metrics.close();
    this.log.info('stopped');
  }
}
