/**
 * How the supervisor collects the registries of its server processes: a
 * request over the cluster IPC channel to each process that serves, a reply
 * with prom-client's JSON form of the process's global registry.
 *
 * Our own exchange rather than prom-client's clusterMetrics(), which asks
 * every forked process and fails the whole scrape when one does not answer
 * in time: a process still booting (the warm spare, a restart) or dying
 * must cost only its own series, never the scrape.
 */
import type { Worker } from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { AggregatorRegistry, register, type MetricObjectWithValues, type MetricValue } from 'prom-client';

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

interface MetricsRequest {
  kind: 'metrics-request';
  id: string;
}

interface MetricsResponse {
  kind: 'metrics-response';
  id: string;
  metrics: MetricsJson;
}

/** Longest wait for one process's registry (under the lab's CPU emulation a scrape takes seconds); a scrape then goes on without it. */
const PROCESS_ANSWER_TIMEOUT_MS = 5_000;

/** Server process: answers the supervisor's requests with this process's registry. */
export function answerMetricRequests(): void {
  process.on('message', (message: MetricsRequest) => {
    if (message?.kind !== 'metrics-request') return;
    void register.getMetricsAsJSON().then(
      (metrics) => process.send?.({ kind: 'metrics-response', id: message.id, metrics } satisfies MetricsResponse),
      () => process.send?.({ kind: 'metrics-response', id: message.id, metrics: [] } satisfies MetricsResponse),
    );
  });
}

function ask(worker: Worker): Promise<MetricsJson> {
  const id = randomUUID();
  return new Promise((resolve) => {
    const done = (metrics: MetricsJson): void => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      resolve(metrics);
    };
    const onMessage = (message: MetricsResponse): void => {
      if (message?.kind === 'metrics-response' && message.id === id) done(message.metrics);
    };
    const timer = setTimeout(() => done([]), PROCESS_ANSWER_TIMEOUT_MS);
    worker.on('message', onMessage);
    if (!worker.isConnected()) return done([]);
    worker.send({ kind: 'metrics-request', id } satisfies MetricsRequest);
  });
}

/** Supervisor: the summed registries of `workers`, in Prometheus text format. */
export async function collectMetrics(workers: readonly Worker[]): Promise<string> {
  const registries = await Promise.all(workers.map(ask));
  return AggregatorRegistry.aggregate(registries.filter((metrics) => metrics.length > 0)).metrics();
}
