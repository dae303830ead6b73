import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceClient, loadService, type ServiceDefinition } from '../src/index.js';
import { FIXTURE_SERVICE, scrape, startServer, type RunningServer } from './helpers.js';

const fixture = await loadService(FIXTURE_SERVICE);
type Client = ServiceClient<ServiceDefinition>;
const CLIENTS_PER_TRANSPORT = 8;

interface Load {
  client: Client;
  pid: number;
  calls: number;
  errors: unknown[];
  done: Promise<void>;
}

/** Calls echo back to back until `stop` (or its first error: a client of a killed process stops there). */
function drive(client: Client, pid: number, stop: { now: boolean }): Load {
  const load: Load = { client, pid, calls: 0, errors: [], done: Promise.resolve() };
  const payload = new Uint8Array(64);
  load.done = (async () => {
    while (!stop.now) {
      try {
        await client.call('echo', payload);
        load.calls++;
      } catch (error) {
        load.errors.push(error);
        return;
      }
    }
  })();
  return load;
}

describe('kill -9 of one server process under load', () => {
  let server: RunningServer;
  const clients: Client[] = [];
  beforeAll(async () => {
    server = await startServer(['--processes', '2', '--threads', '1', '--service', FIXTURE_SERVICE]);
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close().catch(() => {})));
    await server?.stop();
  });

  it('SO_REUSEPORT spreads UDP peers over both processes, each peer staying on one', async () => {
    const pids: number[] = [];
    for (let peer = 0; peer < 16; peer++) {
      const client = await ServiceClient.connect(fixture, { transport: 'udp', port: server.udpPort, timeoutMs: 5_000 });
      try {
        const first = ((await client.call('whereAmI', undefined)) as { pid: number }).pid;
        expect(((await client.call('whereAmI', undefined)) as { pid: number }).pid).toBe(first);
        pids.push(first);
      } finally {
        await client.close();
      }
    }
    // 16 peers all hashed onto one of two sockets: probability 2^-15.
    expect(new Set(pids).size).toBe(2);
  });

  it('is replaced within 2 s; clients of the other process see no error; clients of the killed one fail cleanly, none hang', async () => {
    const tcp = await Promise.all(Array.from({ length: CLIENTS_PER_TRANSPORT }, () => ServiceClient.connect(fixture, { transport: 'tcp', port: server.tcpPort, timeoutMs: 5_000 })));
    const udp = await Promise.all(Array.from({ length: CLIENTS_PER_TRANSPORT }, () => ServiceClient.connect(fixture, { transport: 'udp', port: server.udpPort, timeoutMs: 5_000 })));
    clients.push(...tcp, ...udp);
    const pidOf = async (client: Client): Promise<number> => ((await client.call('whereAmI', undefined)) as { pid: number }).pid;
    const tcpPids = await Promise.all(tcp.map(pidOf));
    const original = new Set(server.lines.filter((line) => line.msg === 'server process ready').map((line) => line.serverPid as number));
    expect(original.size).toBe(2);
    // Cluster hands connections round-robin: both processes hold some.
    expect(new Set(tcpPids).size).toBe(2);
    const victim = tcpPids[0]!;
    // The replacement is the warm spare, which boots (threads started, service imported) after the processes serve.
    // Booting it (Node, the service, two worker threads) took over 20 s at load average 15.
    await server.waitFor((line) => line.msg === 'warm spare ready', 60_000);

    const stop = { now: false };
    const tcpLoads = tcp.map((client, index) => drive(client, tcpPids[index]!, stop));
    const udpLoads = udp.map((client) => drive(client, 0, stop));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const killedAt = Date.now();
    process.kill(victim, 'SIGKILL');
    const replacement = await server.waitFor((line) => line.msg === 'server process ready' && !original.has(line.serverPid as number), 10_000);
    const replacedInMs = (replacement.time as number) - killedAt;
    const tcpBack = server.lines.find((line) => line.pid === replacement.serverPid && line.msg === 'tcp listening')!;
    const tcpServingInMs = (tcpBack.time as number) - killedAt;
    await new Promise((resolve) => setTimeout(resolve, 500));
    stop.now = true;
    const settled = await Promise.race([
      Promise.all([...tcpLoads, ...udpLoads].map((load) => load.done)).then(() => 'settled'),
      new Promise((resolve) => setTimeout(() => resolve('hung'), 15_000)),
    ]);

    const timeline = server.lines.filter((line) => line.pid === replacement.serverPid).map((line) => `${(line.time as number) - killedAt} ms ${line.msg}`);
    expect(settled).toBe('settled');
    // The warm spare only takes its ports: TCP serves again, and the whole process (UDP too) is ready, within 2 s
    // even on the shared, overloaded machine (measured 30–300 ms).
    expect(tcpServingInMs).toBeLessThan(2_000);
    expect(replacedInMs).toBeLessThan(2_000);
    for (const load of tcpLoads) {
      if (load.pid === victim) {
        expect(load.errors).toHaveLength(1);
        expect(load.errors[0]).toMatchObject({ code: 'ERR_ONCRPC_CONNECTION_CLOSED' });
      } else {
        expect(load.errors).toEqual([]);
        expect(load.calls).toBeGreaterThan(0);
      }
    }
    // UDP peers of the dead socket hash onto the survivors: their calls are answered there or fail with an RxRPC error.
    for (const load of udpLoads) for (const error of load.errors) expect((error as { code?: string }).code).toMatch(/^ERR_RX_/);
    expect(await scrape(server.metricsUrl, 'rocerpc_process_restarts_total')).toBe(1);
    expect(await scrape(server.metricsUrl, 'rocerpc_server_processes')).toBe(2);
    const fresh = await ServiceClient.connect(fixture, { transport: 'tcp', port: server.tcpPort, timeoutMs: 5_000 });
    clients.push(fresh);
    expect([...((await fresh.call('echo', new Uint8Array([1, 2, 3]))) as Uint8Array)]).toEqual([1, 2, 3]);
    console.log(`kill -9: tcp serving again in ${tcpServingInMs} ms, whole process ready in ${replacedInMs} ms (load ${os.loadavg()[0]!.toFixed(1)}); tcp calls during the run ${tcpLoads.reduce((sum, load) => sum + load.calls, 0)}, udp ${udpLoads.reduce((sum, load) => sum + load.calls, 0)}, udp errors ${udpLoads.reduce((sum, load) => sum + load.errors.length, 0)}; ${timeline.join(', ')}`);
  });
});
