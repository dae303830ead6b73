/**
 * Inside the rxe lab: the same demo service over RPC-over-RDMA (served by
 * process 0, the RDMA owner), ONC RPC/TCP and RxRPC/UDP, sharing one
 * key-value store; calls over RDMA counted in /metrics with the svcrdma
 * protocol metrics.
 */
import { RdmaRpcClient } from '@roce-rpc/svcrdma';
import { xdrOptional, xdrString, xdrStruct, xdrVariableOpaque, xdrVoid } from '@roce-rpc/xdr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import demo, { DEMO_PROGRAM, DEMO_VERSION } from '../../src/service/demo-service.js';
import { ServiceClient } from '../../src/index.js';
import { freePort, scrape, scrapeUntil, startServer, type RunningServer } from '../helpers.js';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
const opaque = xdrVariableOpaque(65536);

describe('RDMA where a device exists: one service over three transports', () => {
  let server: RunningServer;
  let rdma: RdmaRpcClient;
  let rdmaPort: number;

  beforeAll(async () => {
    rdmaPort = await freePort();
    // One process (process 0 owns RDMA) keeps start-up short under emulation.
    server = await startServer(['--host', address, '--processes', '1', '--threads', '1', '--rdma-port', String(rdmaPort)], {}, 170_000);
    rdma = await RdmaRpcClient.connect({ address, port: rdmaPort });
  });
  afterAll(async () => {
    await rdma?.close();
    await server?.stop();
  });

  it('says where RDMA listens (process 0 owns the listener)', () => {
    expect(server.listening.rdma).toBe(`${address}:${rdmaPort}`);
  });

  it('answers NULL and ECHO over RDMA, and shares the key-value store with TCP and UDP', async () => {
    await rdma.call(DEMO_PROGRAM, DEMO_VERSION, 0, xdrVoid, undefined, xdrVoid);
    const payload = new Uint8Array(512).map((_, index) => index % 256);
    expect(Buffer.from(await rdma.call(DEMO_PROGRAM, DEMO_VERSION, 1, opaque, payload, opaque)).equals(payload)).toBe(true);
    const put = xdrStruct('put_args', { key: xdrString(255), value: opaque });
    await rdma.call(DEMO_PROGRAM, DEMO_VERSION, 4, put, { key: 'lab', value: new TextEncoder().encode('over rdma') }, xdrVoid);
    const tcp = await ServiceClient.connect(demo, { transport: 'tcp', host: address, port: server.tcpPort });
    const udp = await ServiceClient.connect(demo, { transport: 'udp', host: address, port: server.udpPort });
    try {
      expect(new TextDecoder().decode((await tcp.call('get', 'lab'))!)).toBe('over rdma');
      expect(new TextDecoder().decode((await udp.call('get', 'lab'))!)).toBe('over rdma');
      await tcp.call('put', { key: 'lab', value: new TextEncoder().encode('over tcp') });
    } finally {
      await tcp.close();
      await udp.close();
    }
    const got = await rdma.call(DEMO_PROGRAM, DEMO_VERSION, 5, xdrString(255), 'lab', xdrOptional(opaque));
    expect(new TextDecoder().decode(got!)).toBe('over tcp');
  });

  it('counts RDMA calls in /metrics, with the svcrdma protocol metrics', async () => {
    // Under CPU emulation a scrape can miss a slow process's answer: ask again until it is in.
    expect(await scrapeUntil(server.metricsUrl, 'rocerpc_calls_total{transport="rdma",program="536871169",procedure="echo",status="success"}', 1, 60_000)).toBe(1);
    const text = await (await fetch(server.metricsUrl)).text();
    for (const name of ['rocerpc_svcrdma_send_context_allocations_total', 'rocerpc_svcrdma_release_list_drains_total', 'rocerpc_svcrdma_sq_waits_total', 'rocerpc_svcrdma_connections 1']) {
      expect(text).toContain(name);
    }
  });

  it('counts a connection that opened and closed between two scrapes (svcrdma counters are cumulative)', async () => {
    const allocations = 'rocerpc_svcrdma_send_context_allocations_total';
    const before = await scrape(server.metricsUrl, allocations);
    const closedBefore = await scrape(server.metricsUrl, 'rocerpc_svcrdma_connections_closed_total');
    const brief = await RdmaRpcClient.connect({ address, port: rdmaPort });
    for (let call = 0; call < 5; call++) await brief.call(DEMO_PROGRAM, DEMO_VERSION, 0, xdrVoid, undefined, xdrVoid);
    await brief.close();
    expect(await scrapeUntil(server.metricsUrl, 'rocerpc_svcrdma_connections_closed_total', closedBefore + 1, 60_000)).toBe(closedBefore + 1);
    // Its send contexts were never scraped while it was open; they still count, and the counter never goes down.
    expect(await scrape(server.metricsUrl, allocations)).toBeGreaterThan(before);
  });

  it('SIGTERM with an RDMA client connected: the process drains, disconnects its queue pairs and exits 0', async () => {
    server.child.kill('SIGTERM');
    expect(await server.exit).toBe(0);
    expect(server.lines.find((line) => line.msg === 'drained')).toMatchObject({ unfinishedCalls: 0 });
    // The client learns of the disconnect from rdma_cm; a call after it fails (at once, or by its 10 s timeout), never hangs.
    await expect(rdma.call(DEMO_PROGRAM, DEMO_VERSION, 0, xdrVoid, undefined, xdrVoid)).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_SVCRDMA_(DISCONNECTED|TIMEOUT)$/) });
  });
});
