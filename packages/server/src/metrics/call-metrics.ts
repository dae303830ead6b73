/**
 * Call counters and duration histograms of one server process, on
 * prom-client's global registry: the supervisor asks every serving process
 * for it over the cluster IPC channel and sums them (metrics/metrics-endpoint.ts).
 *
 * A call is recorded into plain numbers (one Map lookup, a bucket scan, a
 * few additions) and prom-client sees them only when scraped: prom-client's
 * own inc()/observe() validate and hash their label objects on every call,
 * which measured ~1 µs and two garbage objects per call, a tenth of a NULL
 * call's whole cost on the main thread.
 *
 * Life: created once per process by the ServerProcess (main thread). Calls
 * that run in RxRPC channel worker threads are recorded there and posted here
 * in batches (metrics/call-events.ts), so every call is counted in its
 * process's main thread.
 */
import assert from 'node:assert/strict';
import { Counter, Gauge, collectDefaultMetrics, register, type Metric } from 'prom-client';
import type { CallTransport } from '../service/definition.js';

/** Seconds: 50 µs (a loopback NULL) to 2.5 s (a stuck handler). */
const DURATION_BUCKETS_SECONDS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/**
 * Label sets {transport, program, procedure}: 3 transports x (procedures + 'other').
 * Procedure labels come from the service definition, never from the wire, so this
 * only trips on a service with more procedures than any real one has.
 */
const SERIES_MAX = 3 * 1024;

export interface CallRecord {
  transport: CallTransport;
  /** Defaults to the service's program; 'other' for calls to programs not served. */
  program?: string;
  procedure: string;
  /** The reply: ONC RPC accept/reject status, or 'success' / 'abort' / 'busy' for RxRPC. */
  status: string;
  seconds: number;
}

/** One {transport, program, procedure}: its calls by status and its duration histogram. */
export interface CallSeries {
  readonly labels: { transport: string; program: string; procedure: string };
  readonly byStatus: Map<string, number>;
  /** Per bucket, not cumulative; the last one is +Inf. */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

interface ExportedValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

export class CallMetrics {
  private readonly seriesByKey = new Map<string, CallSeries>();
  readonly workerThreadsReplaced = new Counter({
    name: 'rocerpc_worker_threads_replaced_total',
    help: 'Procedure worker threads that died and were replaced',
  });
  readonly program: string;

  constructor(program: number) {
    this.program = String(program);
    collectDefaultMetrics();
    this.register('rocerpc_calls_total', 'RPC calls answered, by transport, program, procedure and reply status', 'counter', () => this.callValues());
    this.register('rocerpc_call_duration_seconds', 'Time from a call being decoded to its reply being ready', 'histogram', () => this.durationValues());
  }

  record(call: CallRecord): void {
    this.observe(this.series(call.transport, call.program ?? this.program, call.procedure), call.status, call.seconds);
  }

  /** The series of one label set, created on first use; callers on a hot path keep it. */
  series(transport: CallTransport, program: string, procedure: string): CallSeries {
    const key = `${transport}\u0000${program}\u0000${procedure}`;
    let series = this.seriesByKey.get(key);
    if (series === undefined) {
      assert.ok(this.seriesByKey.size < SERIES_MAX, `call metrics: more than ${SERIES_MAX} label sets`);
      series = { labels: { transport, program, procedure }, byStatus: new Map(), buckets: new Float64Array(DURATION_BUCKETS_SECONDS.length + 1), sum: 0, count: 0 };
      this.seriesByKey.set(key, series);
    }
    return series;
  }

  observe(series: CallSeries, status: string, seconds: number): void {
    series.byStatus.set(status, (series.byStatus.get(status) ?? 0) + 1);
    let bucket = 0;
    while (bucket < DURATION_BUCKETS_SECONDS.length && seconds > DURATION_BUCKETS_SECONDS[bucket]!) bucket++;
    series.buckets[bucket]! += 1;
    series.sum += seconds;
    series.count += 1;
  }

  private callValues(): ExportedValue[] {
    const values: ExportedValue[] = [];
    for (const series of this.seriesByKey.values()) {
      for (const [status, value] of series.byStatus) values.push({ labels: { ...series.labels, status }, value });
    }
    return values;
  }

  /** prom-client's histogram form: cumulative `_bucket` series with `le`, then `_sum` and `_count`. */
  private durationValues(): ExportedValue[] {
    const name = 'rocerpc_call_duration_seconds';
    const values: ExportedValue[] = [];
    for (const series of this.seriesByKey.values()) {
      let cumulative = 0;
      series.buckets.forEach((count, bucket) => {
        cumulative += count;
        values.push({ labels: { ...series.labels, le: DURATION_BUCKETS_SECONDS[bucket] ?? '+Inf' }, value: cumulative, metricName: `${name}_bucket` });
      });
      values.push({ labels: series.labels, value: series.sum, metricName: `${name}_sum` });
      values.push({ labels: series.labels, value: series.count, metricName: `${name}_count` });
    }
    return values;
  }

  /**
   * A metric read from this table when scraped. prom-client's registry only
   * calls get() (and reads name/type), so an object of that shape stands in
   * for a Counter or Histogram; `aggregator: 'sum'` makes the supervisor add
   * the processes' values like prom-client's own counters and histograms.
   */
  private register(name: string, help: string, type: 'counter' | 'histogram', values: () => ExportedValue[]): void {
    const metric = { name, help, type, aggregator: 'sum', get: async () => ({ name, help, type, aggregator: 'sum', values: values() }) };
    register.registerMetric(metric as unknown as Metric);
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
