/**
 * svcrdma's counters as prom-client metrics, read at scrape time. Its own
 * module so that processes without RDMA never load svcrdma and the verbs
 * addon (a faster start, which a restarted process needs). Main thread.
 */
import { DRAIN_BATCH_BUCKETS, type SvcRdmaServer } from '@roce-rpc/svcrdma';
import { sampledCounter, sampledGauge, type Sample } from './protocol-metrics.js';

type RdmaConnection = SvcRdmaServer['connections'] extends Set<infer C> ? C : never;

/**
 * svcrdma keeps its counters per connection; a closed connection's last
 * counts are folded into `closedTotals`, so the exposed counters never go down.
 * `servers`: the process's RDMA listeners (process 0 has the service's and,
 * with the `nfs` option, the NFS export's), summed into one set of series.
 */
export function exposeRdmaMetrics(servers: readonly SvcRdmaServer[]): void {
  const open = (connection: RdmaConnection): boolean => servers.some((server) => server.connections.has(connection));
  const sumOver = (value: (server: SvcRdmaServer) => number): number => servers.reduce((total, server) => total + value(server), 0);
  const lastSeen = new Map<RdmaConnection, Map<string, number>>();
  const closedTotals = new Map<string, number>();
  const read = (connection: RdmaConnection): Map<string, number> => {
    const transport = connection.transport.metrics;
    const contexts = connection.transport.sendContexts.metrics;
    const values = new Map<string, number>([
      ['self_enqueues', transport.selfEnqueues],
      ['sq_waits', transport.sqWaits],
      ['send_context_allocations', contexts.allocations],
      ['send_contexts_exhausted', contexts.exhausted],
    ]);
    for (const [point, count] of Object.entries(contexts.drains)) values.set(`drains|${point}`, count);
    contexts.batchSizes.forEach((count, index) => values.set(`batch|${DRAIN_BATCH_BUCKETS[index]}`, count));
    return values;
  };
  const totals = (): Map<string, number> => {
    for (const [connection, values] of lastSeen) {
      if (open(connection)) continue;
      for (const [key, value] of values) closedTotals.set(key, (closedTotals.get(key) ?? 0) + value);
      lastSeen.delete(connection);
    }
    const sum = new Map(closedTotals);
    for (const connection of servers.flatMap((server) => [...server.connections])) {
      const values = read(connection);
      lastSeen.set(connection, values);
      for (const [key, value] of values) sum.set(key, (sum.get(key) ?? 0) + value);
    }
    return sum;
  };
  const plain = (key: string, help: string): void => sampledCounter(`rocerpc_svcrdma_${key}_total`, help, [], () => [[{}, totals().get(key) ?? 0]]);
  plain('self_enqueues', 'Release list went non-empty with nobody waiting: the transport enqueued itself');
  plain('sq_waits', 'Replies that waited for Send Queue space or a send context');
  plain('send_context_allocations', 'Send contexts created (each registers a header buffer)');
  plain('send_contexts_exhausted', 'Send context requests that found none free at the bound');
  const prefixed = (prefix: string): Sample[] =>
    [...totals()].filter(([key]) => key.startsWith(prefix)).map(([key, value]) => [{ [prefix === 'drains|' ? 'point' : 'size_max']: key.slice(prefix.length) }, value]);
  sampledCounter('rocerpc_svcrdma_release_list_drains_total', 'Release-list drains that released a send context, by drain point', ['point'], () => prefixed('drains|'));
  sampledCounter('rocerpc_svcrdma_drain_batches_total', 'Release-list drain batch sizes: batches of at most size_max contexts (per bucket, not cumulative)', ['size_max'], () => prefixed('batch|'));
  // Server-wide figures svcrdma keeps itself (cumulative over closed connections).
  sampledCounter('rocerpc_svcrdma_connections_accepted_total', 'RPC-over-RDMA connections accepted', [], () => [[{}, sumOver((server) => server.metrics.accepted)]]);
  sampledCounter('rocerpc_svcrdma_connections_closed_total', 'RPC-over-RDMA connections closed', [], () => [[{}, sumOver((server) => server.metrics.closed)]]);
  sampledGauge('rocerpc_svcrdma_connections', 'Open RPC-over-RDMA connections', [], () => [[{}, sumOver((server) => server.gauges().connections)]]);
  sampledGauge('rocerpc_svcrdma_send_contexts_in_use', 'Send contexts in flight or awaiting release, over open connections', [], () => [[{}, sumOver((server) => server.gauges().sendContextsInUse)]]);
  sampledGauge('rocerpc_svcrdma_open_registrations', 'Memory registrations open, including those of closed connections whose last RPC was still in service', [], () => [[{}, sumOver((server) => server.gauges().openRegistrations)]]);
}
