import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import demo, { bulkPattern } from '../src/service/demo-service.js';
import { ServiceClient } from '../src/index.js';
import { scrape, scrapeUntil, startServer, type RunningServer } from './helpers.js';

const kDocumentedMetricTypes: Record<string, 'counter' | 'gauge' | 'histogram'> = {
  rocerpc_calls_total: 'counter',
  rocerpc_call_duration_seconds: 'histogram',
  rocerpc_calls_in_flight: 'gauge',
  rocerpc_connections: 'gauge',
  rocerpc_procedure_threads: 'gauge',
  rocerpc_worker_threads_replaced_total: 'counter',
  rocerpc_server_processes: 'gauge',
  rocerpc_process_restarts_total: 'counter',
  rocerpc_oncrpc_tcp_connections_accepted_total: 'counter',
  rocerpc_oncrpc_tcp_connections_refused_total: 'counter',
  rocerpc_oncrpc_tcp_bad_records_total: 'counter',
  rocerpc_oncrpc_tcp_truncated_streams_total: 'counter',
  rocerpc_oncrpc_tcp_discarded_replies_total: 'counter',
  rocerpc_rxrpc_packets_received_total: 'counter',
  rocerpc_rxrpc_packets_sent_total: 'counter',
  rocerpc_rxrpc_data_packets_retransmitted_total: 'counter',
  rocerpc_rxrpc_busy_packets_sent_total: 'counter',
  rocerpc_rxrpc_abort_packets_sent_total: 'counter',
  rocerpc_rxrpc_duplicate_packets_received_total: 'counter',
  rocerpc_rxrpc_packets_rejected_total: 'counter',
  rocerpc_rxrpc_calls_failed_total: 'counter',
  rocerpc_rxrpc_rtt_seconds_total: 'counter',
  rocerpc_rxrpc_rtt_samples_total: 'counter',
  rocerpc_rxrpc_channel_calls_total: 'counter',
  rocerpc_rxrpc_channel_busy_seconds_total: 'counter',
  rocerpc_rxrpc_handlers_running: 'gauge',
  process_resident_memory_bytes: 'gauge',
  process_cpu_seconds_total: 'counter',
  nodejs_heap_size_used_bytes: 'gauge',
  nodejs_eventloop_lag_seconds: 'gauge',
};

describe('the demo service, written once, over ONC RPC/TCP and RxRPC/UDP in two processes', () => {
  let server: RunningServer;
  const clients: ServiceClient<typeof demo>[] = [];

  beforeAll(async () => {
    server = await startServer(['--processes', '2', '--threads', '1']);
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await server?.stop();
  });

  async function connect(transport: 'tcp' | 'udp'): Promise<ServiceClient<typeof demo>> {
    const client = await ServiceClient.connect(demo, { transport, port: transport === 'tcp' ? server.tcpPort : server.udpPort });
    clients.push(client);
    return client;
  }

  it('says where it listens, where its metrics are, and that RDMA is off without a device', async () => {
    for (let waited = 0; !server.stderr().includes('metrics') && waited < 5_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(server.listening).toMatchObject({ tcp: `127.0.0.1:${server.tcpPort}`, udp: `127.0.0.1:${server.udpPort}`, rdma: 'off (no RDMA device)' });
    expect(server.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(server.stderr()).toMatch(/RDMA\s+off \(no RDMA device\)/);
  });

  for (const transport of ['tcp', 'udp'] as const) {
    it(`${transport}: null, echo, bulk read and write`, async () => {
      const client = await connect(transport);
      expect(await client.call('null', undefined)).toBeUndefined();
      const payload = new Uint8Array(4000).map((_, index) => index % 256);
      expect(Buffer.from(await client.call('echo', payload)).equals(payload)).toBe(true);
      const length = transport === 'tcp' ? 1024 * 1024 : 64 * 1024;
      expect(Buffer.from(await client.call('read', { offset: 7, length })).equals(bulkPattern(7, length))).toBe(true);
      const written = await client.call('write', bulkPattern(0, length));
      expect(written.count).toBe(length);
      expect(written.digest.byteLength).toBe(32);
    });
  }

  it('the key-value store is one store across transports, processes and threads', async () => {
    const tcp = await connect('tcp');
    const udp = await connect('udp');
    const key = `key-${Date.now()}`;
    await tcp.call('put', { key, value: new TextEncoder().encode('over tcp') });
    expect(new TextDecoder().decode((await udp.call('get', key))!)).toBe('over tcp');
    await udp.call('put', { key, value: new TextEncoder().encode('over udp') });
    expect(new TextDecoder().decode((await tcp.call('get', key))!)).toBe('over udp');
    expect(await tcp.call('delete', key)).toBe(true);
    expect(await udp.call('get', key)).toBeNull();
    expect(await udp.call('delete', key)).toBe(false);
  });

  it('/metrics sums the calls of every process and thread by transport, procedure and status', async () => {
    const before = await scrape(server.metricsUrl, 'rocerpc_calls_total{transport="tcp",program="536871169",procedure="null",status="success"}');
    const udpBefore = await scrape(server.metricsUrl, 'rocerpc_calls_total{transport="udp",program="536871169",procedure="null",status="success"}');
    const channelSeries = [0, 1, 2, 3].map((channel) => `rocerpc_rxrpc_channel_calls_total{channel="${channel}"}`);
    const channelsBefore = await Promise.all(channelSeries.map((series) => scrape(server.metricsUrl, series)));
    // Several connections, so both processes serve some (cluster hands TCP connections round-robin).
    const tcpClients = await Promise.all([1, 2, 3, 4].map(() => connect('tcp')));
    const udpClients = await Promise.all([1, 2, 3, 4].map(() => connect('udp')));
    await Promise.all([...tcpClients, ...udpClients].flatMap((client) => Array.from({ length: 25 }, () => client.call('null', undefined))));
    expect(await scrape(server.metricsUrl, 'rocerpc_calls_total{transport="tcp",program="536871169",procedure="null",status="success"}')).toBe(before + 100);
    // RxRPC channel threads post their counts in batches (50 ms).
    expect(await scrapeUntil(server.metricsUrl, 'rocerpc_calls_total{transport="udp",program="536871169",procedure="null",status="success"}', udpBefore + 100)).toBe(udpBefore + 100);
    // 25 calls at once on each RxRPC connection keep all four of its channels busy; every call started on exactly
    // one. The four series are scraped concurrently on purpose: concurrent scrapes must not count twice.
    const channelsAfter = await Promise.all(channelSeries.map((series) => scrape(server.metricsUrl, series)));
    const started = channelsAfter.map((after, channel) => after - channelsBefore[channel]!);
    expect(started.reduce((sum, count) => sum + count, 0)).toBe(100);
    for (const count of started) expect(count).toBeGreaterThan(0);
    const text = await (await fetch(server.metricsUrl)).text();
    // Every metric the README lists for a server without RDMA, with its Prometheus type.
    for (const [name, type] of Object.entries(kDocumentedMetricTypes)) expect(text).toContain(`# TYPE ${name} ${type}`);
    for (const series of ['rocerpc_server_processes 2', 'rocerpc_procedure_threads 2', 'rocerpc_calls_in_flight{transport="tcp_rdma"} 0', 'rocerpc_rxrpc_channel_busy_seconds_total{channel="0"}', 'rocerpc_rxrpc_packets_received_total{type="data"}']) {
      expect(text).toContain(series);
    }
    expect(await scrape(server.metricsUrl, 'rocerpc_oncrpc_tcp_connections_accepted_total')).toBeGreaterThanOrEqual(4);
    expect(await scrape(server.metricsUrl, 'rocerpc_call_duration_seconds_count{transport="tcp",program="536871169",procedure="null"}')).toBe(before + 100);
  });
});

describe('RxRPC with rxThreads 0: channels and handlers on the main thread', () => {
  let server: RunningServer;
  let client: ServiceClient<typeof demo> | undefined;

  beforeAll(async () => {
    server = await startServer(['--processes', '1', '--rx-threads', '0', '--transports', 'udp']);
  });
  afterAll(async () => {
    await client?.close();
    await server?.stop();
  });

  it('serves the demo over UDP and counts each call at once (no batch to post across threads)', async () => {
    client = await ServiceClient.connect(demo, { transport: 'udp', port: server.udpPort });
    const payload = new Uint8Array(3000).map((_, index) => index % 251);
    await Promise.all(Array.from({ length: 10 }, () => client!.call('null', undefined)));
    expect(Buffer.from(await client.call('echo', payload)).equals(payload)).toBe(true);
    expect(Buffer.from(await client.call('read', { offset: 3, length: 64 * 1024 })).equals(bulkPattern(3, 64 * 1024))).toBe(true);
    expect(await scrape(server.metricsUrl, 'rocerpc_calls_total{transport="udp",program="536871169",procedure="null",status="success"}')).toBe(10);
    expect(await scrape(server.metricsUrl, 'rocerpc_calls_total{transport="udp",program="536871169",procedure="echo",status="success"}')).toBe(1);
  });
});
