/**
 * The protocol packages' own counters (plain numbers they keep per
 * connection, server or thread) exposed as prom-client metrics, read at
 * scrape time. Main thread of a server process.
 */
import type { OncRpcTcpServer } from '@roce-rpc/oncrpc';
import { PacketType, type RxServer } from '@roce-rpc/rxrpc';
import { Counter, Gauge } from 'prom-client';

export type Sample = readonly [labels: Record<string, string>, value: number];

/** A counter whose value is the package's cumulative count, read when scraped. */
export function sampledCounter(name: string, help: string, labelNames: readonly string[], sample: () => Sample[] | Promise<Sample[]>): void {
  new Counter({
    name,
    help,
    labelNames,
    async collect() {
      // Sample before resetting: concurrent scrapes share one stats request, and a reset before the await
      // would let every scrape's inc land after all the resets.
      const samples = await sample();
      this.reset();
      for (const [labels, value] of samples) this.inc(labels, value);
    },
  });
}

export function sampledGauge(name: string, help: string, labelNames: readonly string[], sample: () => Sample[] | Promise<Sample[]>): void {
  new Gauge({
    name,
    help,
    labelNames,
    async collect() {
      // Sample before resetting: concurrent scrapes share one stats request, and a reset before the await
      // would let every scrape's set land after all the resets.
      const samples = await sample();
      this.reset();
      for (const [labels, value] of samples) this.set(labels, value);
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
  // Per channel index (cid & 3), summed over connections: how the four call slots of a connection are used.
  const byChannel = (counts: readonly number[], scale = 1): Sample[] => counts.map((count, channel) => [{ channel: String(channel) }, count * scale] as const);
  sampledCounter('rocerpc_rxrpc_channel_calls_total', 'RxRPC calls started, by channel index (cid & 3)', ['channel'], async () => byChannel((await stats()).counters.callsPerChannel));
  sampledCounter('rocerpc_rxrpc_channel_busy_seconds_total', 'Time RxRPC calls occupied each channel index, from call start to reply acknowledged or superseded', ['channel'], async () =>
    byChannel((await stats()).counters.channelBusyMs, 1 / 1000),
  );
  sampledGauge('rocerpc_rxrpc_handlers_running', 'RxRPC calls running on channel worker threads', [], async () => [[{}, (await stats()).handlersRunning]]);
}

