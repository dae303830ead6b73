/**
 * prom-client metrics of one server process, on prom-client's global
 * registry: the supervisor asks every serving process for it over the
 * cluster IPC channel and sums them (metrics/metrics-endpoint.ts).
 *
 * Life: created once per process by the ServerProcess (main thread). Calls
 * that run in RxRPC channel worker threads are recorded there and posted here
 * in batches (metrics/call-events.ts), so every call is counted in its
 * process's main thread.
 */
import { Counter, Gauge, Histogram, collectDefaultMetrics, register } from 'prom-client';
import type { CallTransport } from '../service/definition.js';

/** Seconds: 50 µs (a loopback NULL) to 2.5 s (a stuck handler). */
const DURATION_BUCKETS_SECONDS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export interface CallRecord {
  transport: CallTransport;
  /** Defaults to the service's program; 'other' for calls to programs not served. */
  program?: string;
  procedure: string;
  /** The reply: ONC RPC accept/reject status, or 'success' / 'abort' / 'busy' for RxRPC. */
  status: string;
  seconds: number;
}

export class CallMetrics {
  readonly calls = new Counter({
    name: 'rocerpc_calls_total',
    help: 'RPC calls answered, by transport, program, procedure and reply status',
    labelNames: ['transport', 'program', 'procedure', 'status'] as const,
  });
  readonly duration = new Histogram({
    name: 'rocerpc_call_duration_seconds',
    help: 'Time from a call being decoded to its reply being ready',
    labelNames: ['transport', 'program', 'procedure'] as const,
    buckets: DURATION_BUCKETS_SECONDS,
  });
  readonly workerThreadsReplaced = new Counter({
    name: 'rocerpc_worker_threads_replaced_total',
    help: 'Procedure worker threads that died and were replaced',
  });
  readonly program: string;

  constructor(program: number) {
    this.program = String(program);
    collectDefaultMetrics();
  }

  record(call: CallRecord): void {
    const program = call.program ?? this.program;
    this.calls.inc({ transport: call.transport, program, procedure: call.procedure, status: call.status });
    this.duration.observe({ transport: call.transport, program, procedure: call.procedure }, call.seconds);
  }

  /** A gauge whose value is read when Prometheus scrapes. */
  static sampled(name: string, help: string, labelNames: readonly string[], sample: (gauge: Gauge<string>) => void | Promise<void>): Gauge<string> {
    return new Gauge({
      name,
      help,
      labelNames,
      async collect() {
        await sample(this);
      },
    });
  }

  static reset(): void {
    register.clear();
  }
}

