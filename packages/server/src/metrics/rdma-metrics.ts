/**
 * svcrdma's counters as prom-client metrics, read at scrape time. Its own
 * module so that processes without RDMA never load svcrdma and the verbs
 * addon (a faster start, which a restarted process needs). Main thread.
 */
import { DRAIN_BATCH_BUCKETS, SvcRdmaThreadedServer, type DrainPoint, type SvcRdmaGauges, type SvcRdmaServer, type SvcRdmaServerCounters } from '@roce-rpc/svcrdma';
import { sampledCounter, sampledGauge } from './protocol-metrics.js';

type RdmaCounterSource = { counters(): SvcRdmaServerCounters; gauges(): SvcRdmaGauges };

/** The worker-thread server's cumulative metrics under the main-thread server's counter names. */
function threadedCounterSource(server: SvcRdmaThreadedServer): RdmaCounterSource {
  return {
    counters: () => {
      const { accepted, closed, workers, transports } = server.metrics();
      return {
        accepted,
        closed,
        calls: workers.calls,
        errorReplies: workers.errorReplies,
        selfEnqueues: transports.selfEnqueues,
        sqWaits: transports.sqWaits,
        emptyReceives: transports.emptyReceives,
        sendContextAllocations: transports.allocations,
        sendContextsExhausted: transports.exhausted,
        failedSends: transports.failedSends,
        lostSends: transports.lostSends,
        drains: transports.drains as Record<DrainPoint, number>,
        released: transports.released as Record<DrainPoint, number>,
        batchSizes: transports.batchSizes,
      };
    },
    gauges: () => server.gauges(),
  };
}

/**
 * `listeners`: the process's RDMA listeners (process 0 has the service's and,
 * with the `nfs` option, the NFS export's, on the main thread or on worker
 * threads), summed into one set of series. svcrdma's counters are server-wide
 * and cumulative (closed connections' final counts included), so every series
 * only goes up.
 */
export function exposeRdmaMetrics(listeners: readonly (SvcRdmaServer | SvcRdmaThreadedServer)[]): void {
  const servers: RdmaCounterSource[] = listeners.map((server) => (server instanceof SvcRdmaThreadedServer ? threadedCounterSource(server) : server));
  const sumOver = (value: (server: RdmaCounterSource) => number): number => servers.reduce((total, server) => total + value(server), 0);
  const counted = (value: (counters: SvcRdmaServerCounters) => number): number => sumOver((server) => value(server.counters()));
  const plain = (name: string, help: string, value: (counters: SvcRdmaServerCounters) => number): void =>
    sampledCounter(`rocerpc_svcrdma_${name}_total`, help, [], () => [[{}, counted(value)]]);
  plain('self_enqueues', 'Release list went non-empty with nobody waiting: the transport enqueued itself', (counters) => counters.selfEnqueues);
  plain('sq_waits', 'Replies that waited for Send Queue space or a send context', (counters) => counters.sqWaits);
  plain('send_context_allocations', 'Send contexts created (each registers a header buffer)', (counters) => counters.sendContextAllocations);
  plain('send_contexts_exhausted', 'Send context requests that found none free at the bound', (counters) => counters.sendContextsExhausted);
  plain('connections_accepted', 'RPC-over-RDMA connections accepted', (counters) => counters.accepted);
  plain('connections_closed', 'RPC-over-RDMA connections closed', (counters) => counters.closed);
  sampledCounter('rocerpc_svcrdma_release_list_drains_total', 'Release-list drains that released a send context, by drain point', ['point'], () => {
    const all = servers.map((server) => server.counters().drains);
    return [...new Set(all.flatMap((drains) => Object.keys(drains)))].map((point) => [{ point }, all.reduce((sum, drains) => sum + (drains[point as keyof typeof drains] ?? 0), 0)]);
  });
  sampledCounter('rocerpc_svcrdma_drain_batches_total', 'Release-list drain batch sizes: batches of at most size_max contexts (per bucket, not cumulative)', ['size_max'], () => {
    const all = servers.map((server) => server.counters().batchSizes);
    return DRAIN_BATCH_BUCKETS.map((sizeMax, index) => [{ size_max: String(sizeMax) }, all.reduce((sum, sizes) => sum + (sizes[index] ?? 0), 0)]);
  });
  sampledGauge('rocerpc_svcrdma_connections', 'Open RPC-over-RDMA connections', [], () => [[{}, sumOver((server) => server.gauges().connections)]]);
  sampledGauge('rocerpc_svcrdma_send_contexts_in_use', 'Send contexts in flight or awaiting release, over open connections', [], () => [[{}, sumOver((server) => server.gauges().sendContextsInUse)]]);
  sampledGauge('rocerpc_svcrdma_open_registrations', 'Memory registrations open, including those of closed connections whose last RPC was still in service', [], () => [[{}, sumOver((server) => server.gauges().openRegistrations)]]);
}
