import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadService, ServiceClient, type ServiceDefinition } from '../src/index.js';
import { FIXTURE_SERVICE, startServer, type LogLine, type RunningServer } from './helpers.js';

const CALLS_UNDER_LOAD = 400;
const CALLS_PER_ROUND = 50;

describe('pino JSON logs: per-call and per-connection child loggers, quiet at info under load', () => {
  let fixture: ServiceDefinition;
  let info: RunningServer;
  let debug: RunningServer;

  beforeAll(async () => {
    fixture = await loadService(FIXTURE_SERVICE);
    [info, debug] = await Promise.all([
      startServer(['--processes', '1', '--threads', '1', '--service', FIXTURE_SERVICE, '--log-level', 'info']),
      startServer(['--processes', '1', '--threads', '1', '--service', FIXTURE_SERVICE, '--log-level', 'debug', '--transports', 'tcp,udp']),
    ]);
    // The supervisor forks its warm spare after 'listening' and logs it ready at info: let that
    // line come before the test that counts every line written under load.
    await info.waitFor((line) => line.msg === 'warm spare ready', 60_000);
  });
  afterAll(async () => {
    await Promise.all([info?.stop(), debug?.stop()]);
  });

  for (const transport of ['tcp', 'udp'] as const) {
    it(`${transport}: a handler's call.log line carries the transport, the peer and the call id`, async () => {
      const client = await ServiceClient.connect(fixture, { transport, port: transport === 'tcp' ? info.tcpPort : info.udpPort });
      try {
        const tag = transport === 'tcp' ? 4101 : 4102;
        const callId = (await client.call('logs', tag)) as number;
        const line = await info.waitFor((each) => each.msg === 'fixture handler logs' && each.tag === tag);
        // TCP calls run on a procedure thread, UDP calls on an RxRPC channel thread: both log from there.
        expect(line).toMatchObject({ level: 30, transport, callId, role: 'server', thread: transport === 'tcp' ? 'procedure' : 'rxrpc-channel' });
        expect(line.peer).toMatch(/^127\.0\.0\.1:\d+$/);
        expect(line.pid).not.toBe(info.child.pid);
      } finally {
        await client.close();
      }
    });
  }

  it(`writes nothing per call at info: ${CALLS_UNDER_LOAD} calls over TCP and UDP add no line`, async () => {
    const clients = await Promise.all([
      ServiceClient.connect(fixture, { transport: 'tcp', port: info.tcpPort }),
      ServiceClient.connect(fixture, { transport: 'udp', port: info.udpPort }),
    ]);
    try {
      const linesBefore = info.lines.length;
      // In rounds: a client keeps at most 128 calls in flight.
      for (let round = 0; round < CALLS_UNDER_LOAD / 2 / CALLS_PER_ROUND; round++) {
        await Promise.all(clients.flatMap((client) => Array.from({ length: CALLS_PER_ROUND }, () => client.call('null', undefined))));
      }
      // RxRPC channel threads post their call records every 50 ms; give any stray line time to arrive.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const added = info.lines.slice(linesBefore);
      expect(added.map((line) => line.msg)).toEqual([]);
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
  });

  it('at debug, a TCP connection logs its open and close with transport and peer', async () => {
    const client = await ServiceClient.connect(fixture, { transport: 'tcp', port: debug.tcpPort });
    await client.call('null', undefined);
    const opened = await debug.waitFor((line) => line.msg === 'connection opened');
    await client.close();
    const closed = await debug.waitFor((line) => line.msg === 'connection closed' && line.peer === opened.peer);
    for (const line of [opened, closed] as LogLine[]) expect(line).toMatchObject({ level: 20, transport: 'tcp', role: 'server' });
    expect(opened.peer).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('at debug, an RxRPC connection logs its creation with transport, peer, epoch and cid', async () => {
    const client = await ServiceClient.connect(fixture, { transport: 'udp', port: debug.udpPort });
    try {
      await client.call('null', undefined);
      // RxRPC has no close on the wire: the server reaps an idle connection later, and logs it then.
      const opened = await debug.waitFor((line) => line.msg === 'connection opened' && line.transport === 'udp');
      expect(opened).toMatchObject({ level: 20, role: 'server' });
      expect(opened.peer).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(opened.epoch).toBeGreaterThan(0);
      expect(typeof opened.cid).toBe('number');
    } finally {
      await client.close();
    }
  });
});
