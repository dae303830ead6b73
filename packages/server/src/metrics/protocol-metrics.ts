/**
 * The protocol packages' own counters (plain numbers they keep per
 * connection, server or thread) exposed as prom-client metrics, read at
 * scrape time. Main thread of a server process.
 */
import type { OncRpcTcpServer } from '@roce-rpc/oncrpc';
import { PacketType, type RxServer } from '@roce-rpc/rxrpc';
import { DRAIN_BATCH_BUCKETS, type SvcRdmaServer } from '@roce-rpc/svcrdma';
import { Counter, Gauge } from 'prom-client';

type Sample = readonly [labels: Record<string, string>, value: number];

/** A counter whose value is the package's cumulative count, read when scraped. */
function sampledCounter(name: string, help: string, labelNames: readonly string[], sample: () => Sample[] | Promise<Sample[]>): void {
  new Counter({
    name,
    help,
    labelNames,
    async collect() {
      this.reset();
      for (const [labels, value] of await sample()) this.inc(labels, value);
    },
  });
}

function sampledGauge(name: string, help: string, labelNames: readonly string[], sample: () => Sample[] | Promise<Sample[]>): void {
  new Gauge({
    name,
    help,
    labelNames,
    async collect() {
      this.reset();
      for (const [labels, value] of await sample()) this.set(labels, value);
    },
  });
}

export function exposeTcpMetrics(server: OncRpcTcpServer): void {
  const counters = server.metrics;
  sampledCounter('rocerpc_oncrpc_tcp_connections_accepted_total', 'TCP connections accepted', [], () => [[{}, counters.connectionsAccepted]]);
  sampledCounter('rocerpc_oncrpc_tcp_connections_refused_total', 'TCP connections closed at accept (maxConnections)', [], () => [[{}, counters.connectionsRefused]]);
  sampledCounter('rocerpc_oncrpc_tcp_bad_records_total', 'TCP records refused (too large, too many fragments)', [], () => [[{}, counters.badRecords]]);
  sampledCounter('rocerpc_oncrpc_tcp_truncated_streams_total', 'TCP streams that ended inside a record', [], () => [[{}, counters.truncatedStreams]]);
  sampledCounter('rocerpc_oncrpc_tcp_discarded_replies_total', 'Replies whose connection had gone', [], () => [[{}, counters.discardedReplies]]);
}

const PACKET_TYPE_NAMES = new Map<number, string>(Object.entries(PacketType).map(([name, type]) => [type, name.toLowerCase()]));

function byPacketType(counts: readonly number[]): Sample[] {
  return counts.flatMap((count, index) => {
    const name = PACKET_TYPE_NAMES.get(index + 1);
    return name === undefined ? [] : [[{ type: name }, count] as const];
  });
}

export function exposeRxMetrics(server: RxServer): void {
  // One stats() round trip to the channel workers per scrape, shared by every metric below.
  let pending: ReturnType<RxServer['stats']> | undefined;
  const stats = (): ReturnType<RxServer['stats']> => {
    pending ??= server.stats().finally(() => setImmediate(() => (pending = undefined)));
    return pending;
  };
  const counter = (name: string, help: string, pick: (counters: Awaited<ReturnType<RxServer['stats']>>['counters']) => number): void =>
    sampledCounter(name, help, [], async () => [[{}, pick((await stats()).counters)]]);
  sampledCounter('rocerpc_rxrpc_packets_received_total', 'RxRPC packets received, by type', ['type'], async () => byPacketType((await stats()).counters.packetsRead));
  sampledCounter('rocerpc_rxrpc_packets_sent_total', 'RxRPC packets sent, by type', ['type'], async () => byPacketType((await stats()).counters.packetsSent));
  counter('rocerpc_rxrpc_data_packets_retransmitted_total', 'RxRPC DATA packets sent again', (c) => c.dataPacketsReSent);
  counter('rocerpc_rxrpc_busy_packets_sent_total', 'RxRPC BUSY packets sent (channel still in use)', (c) => c.busyPacketsSent);
  counter('rocerpc_rxrpc_abort_packets_sent_total', 'RxRPC ABORT packets sent', (c) => c.abortPacketsSent);
  counter('rocerpc_rxrpc_duplicate_packets_received_total', 'RxRPC duplicate DATA packets received', (c) => c.dupPacketsRead);
  counter('rocerpc_rxrpc_packets_rejected_total', 'RxRPC packets dropped before reaching a call', (c) => c.packetsRejected);
  counter('rocerpc_rxrpc_calls_failed_total', 'RxRPC calls that ended in an abort or timeout', (c) => c.callsFailed);
  counter('rocerpc_rxrpc_rtt_samples_total', 'RxRPC round-trip time samples', (c) => c.rttSamples);
  counter('rocerpc_rxrpc_rtt_seconds_total', 'Sum of RxRPC round-trip time samples (divide by rtt_samples)', (c) => c.rttTotalMs / 1000);
  sampledGauge('rocerpc_rxrpc_handlers_running', 'RxRPC calls running on channel worker threads', [], async () => [[{}, (await stats()).handlersRunning]]);
}

type RdmaConnection = SvcRdmaServer['connections'] extends Set<infer C> ? C : never;

/**
 * svcrdma keeps its counters per connection; a closed connection's last
 * counts are folded into `closedTotals`, so the exposed counters never go down.
 */
export function exposeRdmaMetrics(server: SvcRdmaServer): void {
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
      if (server.connections.has(connection)) continue;
      for (const [key, value] of values) closedTotals.set(key, (closedTotals.get(key) ?? 0) + value);
      lastSeen.delete(connection);
    }
    const sum = new Map(closedTotals);
    for (const connection of server.connections) {
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
  sampledGauge('rocerpc_svcrdma_connections', 'Open RPC-over-RDMA connections', [], () => [[{}, server.connections.size]]);
}
