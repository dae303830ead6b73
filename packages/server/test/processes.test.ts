import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceClient, loadService, type ServiceDefinition } from '../src/index.js';
import { FIXTURE_SERVICE, freePort, runCli, scrape, scrapeUntil, startServer, type RunningServer } from './helpers.js';

const fixture = await loadService(FIXTURE_SERVICE);
type Client = ServiceClient<ServiceDefinition>;

async function connect(transport: 'tcp' | 'udp', port: number, clients: Client[]): Promise<Client> {
  const client = await ServiceClient.connect(fixture, { transport, port, timeoutMs: 10_000 });
  clients.push(client);
  return client;
}

describe('a worker thread that throws or dies is replaced without taking its process down', () => {
  let server: RunningServer;
  const clients: Client[] = [];
  beforeAll(async () => {
    server = await startServer(['--processes', '1', '--threads', '2', '--service', FIXTURE_SERVICE]);
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await server?.stop();
  });

  it('tcp: a throwing handler answers SYSTEM_ERR; a killed thread fails its call and is replaced', async () => {
    const client = await connect('tcp', server.tcpPort, clients);
    const before = (await client.call('whereAmI', undefined)) as { pid: number };
    await expect(client.call('throws', undefined)).rejects.toMatchObject({ code: 'ERR_ONCRPC_SYSTEM_ERR' });
    await expect(client.call('killThread', 3)).rejects.toMatchObject({ code: 'ERR_ONCRPC_SYSTEM_ERR' });
    await expect(client.call('killThread', 4)).rejects.toMatchObject({ code: 'ERR_ONCRPC_SYSTEM_ERR' });
    const threads = new Set<number>();
    for (let index = 0; index < 20; index++) {
      const where = (await client.call('whereAmI', undefined)) as { pid: number; thread: number };
      expect(where.pid).toBe(before.pid);
      threads.add(where.thread);
    }
    expect(threads.size).toBeGreaterThanOrEqual(1);
    // piscina starts the replacement threads in the background.
    expect(await scrapeUntil(server.metricsUrl, 'rocerpc_worker_threads_replaced_total', 2)).toBe(2);
    expect(await scrapeUntil(server.metricsUrl, 'rocerpc_procedure_threads', 2)).toBe(2);
    expect(await scrape(server.metricsUrl, 'rocerpc_calls_total{transport="tcp",program="536872823",procedure="throws",status="system_err"}')).toBe(1);
  });

  it('udp: a throwing handler aborts its call; the process goes on', async () => {
    const client = await connect('udp', server.udpPort, clients);
    await expect(client.call('throws', undefined)).rejects.toMatchObject({ abortCode: -6 });
    expect(((await client.call('whereAmI', undefined)) as { pid: number }).pid).toBeGreaterThan(0);
  });
});

describe('flood beyond maxInFlightCalls is refused with the protocol error reply', () => {
  let server: RunningServer;
  const clients: Client[] = [];
  beforeAll(async () => {
    server = await startServer(['--processes', '1', '--threads', '1', '--rx-threads', '1', '--max-in-flight-calls', '4', '--service', FIXTURE_SERVICE]);
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await server?.stop();
  });

  it('tcp: calls past the bound get SYSTEM_ERR at once, the rest are served; memory stays bounded', async () => {
    const flooders = await Promise.all([1, 2, 3, 4].map(() => connect('tcp', server.tcpPort, clients)));
    const results = await Promise.allSettled(flooders.flatMap((client) => Array.from({ length: 16 }, () => client.call('sleep', 200))));
    const served = results.filter((result) => result.status === 'fulfilled').length;
    const refused = results.filter((result) => result.status === 'rejected' && (result.reason as { code?: string }).code === 'ERR_ONCRPC_SYSTEM_ERR').length;
    expect(served + refused).toBe(64);
    expect(served).toBeGreaterThanOrEqual(4);
    expect(refused).toBeGreaterThan(0);
    expect(await scrape(server.metricsUrl, 'rocerpc_calls_total{transport="tcp",program="536872823",procedure="sleep",status="system_err"}')).toBe(refused);
    expect(await scrape(server.metricsUrl, 'process_resident_memory_bytes')).toBeLessThan(512 * 1024 * 1024);
  });

  it('udp: calls past the bound are aborted with the busy code (110) and the server recovers', async () => {
    const flooders = await Promise.all([1, 2, 3].map(() => connect('udp', server.udpPort, clients)));
    const results = await Promise.allSettled(flooders.flatMap((client) => Array.from({ length: 4 }, () => client.call('sleep', 300))));
    const busy = results.filter((result) => result.status === 'rejected' && (result.reason as { abortCode?: number }).abortCode === 110).length;
    expect(busy).toBeGreaterThan(0);
    expect(results.filter((result) => result.status === 'fulfilled').length).toBeGreaterThanOrEqual(4);
    expect(await flooders[0]!.call('sleep', 1)).toBe(1);
  });
});

describe('SIGTERM drains: stop accepting, finish in-flight calls, exit 0', () => {
  it('a call in service when SIGTERM arrives is answered, then every process exits 0', async () => {
    const server = await startServer(['--processes', '2', '--threads', '1', '--drain-timeout-ms', '10000', '--service', FIXTURE_SERVICE]);
    const clients: Client[] = [];
    try {
      const client = await connect('tcp', server.tcpPort, clients);
      const slow = client.call('sleep', 1500);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const started = Date.now();
      server.child.kill('SIGTERM');
      expect(await slow).toBe(1500);
      expect(await server.exit).toBe(0);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(server.lines.filter((line) => line.msg === 'drained')).toHaveLength(2);
      await expect(ServiceClient.connect(fixture, { transport: 'tcp', port: server.tcpPort })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      await Promise.all(clients.map((client) => client.close().catch(() => {})));
      await server.stop();
    }
  });
});

describe('SIGTERM drains within its bound: a call longer than drainTimeoutMs does not hold the exit', () => {
  it('gives up on the call after drainTimeoutMs, logs it unfinished, and exits 0 well before the SIGKILL grace', async () => {
    const drainMs = 800;
    const server = await startServer(['--processes', '1', '--threads', '1', '--drain-timeout-ms', String(drainMs), '--service', FIXTURE_SERVICE]);
    const clients: Client[] = [];
    try {
      const tcp = await connect('tcp', server.tcpPort, clients);
      // The RxRPC call's client gives up after 3 s if the server's abort does not reach it first.
      const udp = await ServiceClient.connect(fixture, { transport: 'udp', port: server.udpPort, timeoutMs: 3_000 });
      clients.push(udp);
      const stuck = [tcp.call('sleep', 30_000), udp.call('sleep', 30_000)].map((call) => call.then(() => 'answered', (error: { code?: string }) => error.code ?? 'error'));
      // Both calls in service before SIGTERM (on a loaded machine they can take a while to start).
      expect(await scrapeUntil(server.metricsUrl, 'rocerpc_calls_in_flight{transport="tcp_rdma"}', 1)).toBe(1);
      expect(await scrapeUntil(server.metricsUrl, 'rocerpc_calls_in_flight{transport="udp"}', 1)).toBe(1);
      const started = Date.now();
      server.child.kill('SIGTERM');
      expect(await server.exit).toBe(0);
      // drainTimeoutMs, then closing; the supervisor would SIGKILL only 2 s after drainTimeoutMs.
      expect(Date.now() - started).toBeLessThan(drainMs + 1_500);
      expect(server.lines.find((line) => line.msg === 'drained')).toMatchObject({ unfinishedCalls: 2 });
      // Neither client hangs: TCP sees the connection close, RxRPC an abort or its own timeout.
      const outcomes = await Promise.all(stuck);
      expect(outcomes[0]).toBe('ERR_ONCRPC_CONNECTION_CLOSED');
      expect(outcomes[1]).toMatch(/^ERR_RX_/);
    } finally {
      await Promise.all(clients.map((client) => client.close().catch(() => {})));
      await server.stop();
    }
  }, 30_000);
});

describe('a port already in use is refused at start, naming the field', () => {
  it('exits 1 with ERR_SERVER_ADDRESS_IN_USE and tcpPort in the message', async () => {
    const port = await freePort();
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    try {
      const run = runCli(['--processes', '1', '--tcp-port', String(port), '--udp-port', String(await freePort()), '--metrics-port', '0']);
      expect(await run.exit).toBe(1);
      expect(run.stderr()).toMatch(new RegExp(`tcpPort: 127\\.0\\.0\\.1:${port} is already in use \\[ERR_SERVER_ADDRESS_IN_USE\\]`));
    } finally {
      squatter.close();
    }
  });
});

describe('a process that keeps dying is restarted with backoff', () => {
  it('restarts at once, then after restartBackoffMs, doubling', async () => {
    const server = await startServer(['--processes', '1', '--threads', '1', '--restart-backoff-ms', '200', '--restart-backoff-max-ms', '400', '--service', FIXTURE_SERVICE]);
    try {
      const delays: number[] = [];
      for (let death = 1; death <= 4; death++) {
        const client = await ServiceClient.connect(fixture, { transport: 'tcp', port: server.tcpPort, timeoutMs: 10_000 });
        await expect(client.call('killProcess', undefined)).rejects.toMatchObject({ code: 'ERR_ONCRPC_CONNECTION_CLOSED' });
        await client.close();
        const died = await server.waitFor((line) => line.msg === 'server process died; restarting' && !delays.includes(line.time as number) && delays.length < death);
        delays.push(died.time as number);
        await server.waitFor((line) => line.msg === 'server process ready' && (line.time as number) > (died.time as number));
      }
      const restartIn = server.lines.filter((line) => line.msg === 'server process died; restarting').map((line) => line.restartInMs);
      expect(restartIn).toEqual([0, 200, 400, 400]);
      expect(await scrape(server.metricsUrl, 'rocerpc_process_restarts_total')).toBe(4);
    } finally {
      await server.stop();
    }
  });
});
