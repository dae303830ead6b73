/**
 * Inside the rxe lab: faults at the queue-pair level, each while another
 * client keeps calling without an error, each ending with every gauge back at
 * its baseline (see gauges.ts).
 *
 * - A client exceeding its credits eightfold with slow calls: the server's
 *   Receive slots (twice the grant) fill while the calls wait for a worker, so
 *   the client's surplus Sends wait in receiver-not-ready retries (rdma_cm
 *   gives the requester the responder's RNR retry count: the server's 7,
 *   forever, so a client cannot choose to give up); every call is answered,
 *   no reply grants more than the credits.
 * - Flushed completions after a QP error: a peer offers a Write chunk with a
 *   handle it never registered; the server's RDMA Write is NAKed (remote access
 *   error), the QP goes to the error state, the reply's Send posted behind it
 *   is flushed, slow calls still in service finish without replying, and the
 *   server closes the connection by itself and gets every send context back
 *   through the release list (none lost). The peer then does what a client
 *   does on a disconnect: destroys its id.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SvcRdmaServer, decodeReplyHeader } from '../../dist/index.js';
import { BarePeer } from './bare_peer.ts';
import { Procedure, faultDispatcher, pattern, rdmaMessage, rpcCall } from './fault_service.ts';
import { expectBackToBaseline, startSteadyClient, waitFor, warmBaseline, watchConnections } from './gauges.ts';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
const PORT = 20057;
const CREDITS = 8;
/** rxe's transport retries with rdma_cm's RoCE timeouts take seconds; flushes follow at once. */
const QP_ERROR_WAIT_MS = 30_000;
/** Long enough that calls pile up behind the server's four workers. */
const SLOW_CALL_MS = 200;

let server: SvcRdmaServer;
let baseline: Record<string, number>;
const serverErrors: unknown[] = [];

beforeAll(async () => {
  server = SvcRdmaServer.listen(faultDispatcher(), { address, port: PORT, credits: CREDITS, onError: (error) => serverErrors.push(error) });
  baseline = await warmBaseline(server, address, PORT);
});

afterAll(async () => {
  await server?.close();
});

/** The server's connections and their metrics, for a failure's message. */
function describeConnections(): string {
  return JSON.stringify([...server.connections].map((connection) => ({ transport: connection.transport.metrics, sendContexts: connection.transport.sendContexts.metrics })));
}

describe('queue-pair faults', () => {
  it('answers every call of a client that sends eight times its credits of slow calls, granting never more than the credits', async () => {
    const watch = watchConnections(server);
    const steady = await startSteadyClient(address, PORT, pattern(2000));
    const greedy = await BarePeer.connect({ address, port: PORT });
    const calls = 8 * CREDITS;
    const started = performance.now();
    for (let index = 0; index < calls; index++) greedy.send(rdmaMessage(5000 + index, 64, rpcCall(5000 + index, Procedure.SLOW, SLOW_CALL_MS)));
    const answered = await greedy.pollUntil(() => greedy.replies.length === calls, QP_ERROR_WAIT_MS);
    console.log(`credit overrun: ${greedy.replies.length}/${calls} answered in ${((performance.now() - started) / 1000).toFixed(1)} s; peer completions ${JSON.stringify(Object.fromEntries(greedy.statuses))}; server ${describeConnections()}`);
    expect(answered).toBe(true);
    expect(greedy.count('IBV_WC_SUCCESS')).toBe(2 * calls);
    const xids = greedy.replies.map((reply) => {
      const header = decodeReplyHeader(reply);
      expect(header.kind).toBe('reply');
      expect(header.credits).toBeLessThanOrEqual(CREDITS);
      return header.xid;
    });
    expect(new Set(xids).size).toBe(calls);
    greedy.close();
    const errors = await steady.stop();
    watch.stop();
    expect(errors).toEqual([]);
    expect(server.pool.metrics.failures).toBe(0);
    await expectBackToBaseline(server, watch.seen, baseline);
  });

  it('flushes the Send posted behind an RDMA Write the peer NAKs and disconnects by itself, losing no send context', async () => {
    const watch = watchConnections(server);
    const steady = await startSteadyClient(address, PORT, pattern(2000));
    const before = new Set(server.connections);
    const peer = await BarePeer.connect({ address, port: PORT });
    const [connection] = [...server.connections].filter((candidate) => !before.has(candidate));
    expect(connection).toBeDefined();
    // Calls still in service when the QP fails, then a 64 KiB result for a Write chunk whose handle the peer never registered.
    const forged = peer.sink.rkey ^ 0x5a5a00;
    const writeList = [{ length: 1 << 16, segments: [{ handle: forged, length: 1 << 16, offset: BigInt(peer.sink.address) }] }];
    for (let index = 0; index < 3; index++) peer.send(rdmaMessage(6000 + index, CREDITS, rpcCall(6000 + index, Procedure.SLOW, 100 * (index + 1))));
    peer.send(rdmaMessage(6003, CREDITS, rpcCall(6003, Procedure.READ, 1 << 16), { writeList }));
    const started = performance.now();
    const disconnected = await waitFor(() => peer.disconnected, QP_ERROR_WAIT_MS);
    const metrics = connection!.transport.sendContexts.metrics;
    console.log(`QP error: server ${disconnected ? 'disconnected' : 'did NOT disconnect'} ${((performance.now() - started) / 1000).toFixed(1)} s after the calls; send contexts ${JSON.stringify(metrics)}; transport ${JSON.stringify(connection!.transport.metrics)}`);
    expect(disconnected).toBe(true);
    peer.close();
    expect(await waitFor(() => !server.connections.has(connection!), QP_ERROR_WAIT_MS)).toBe(true);
    // The flushed Sends are counted when teardown drains them, which may finish after the peer saw the disconnect.
    const drained = connection!.transport.sendContexts.metrics;
    expect(drained.failedSends).toBeGreaterThan(0);
    expect(drained.lostSends).toBe(0);
    const errors = await steady.stop();
    watch.stop();
    expect(errors).toEqual([]);
    expect(server.pool.metrics.failures).toBe(0);
    expect(serverErrors).toEqual([]);
    await expectBackToBaseline(server, watch.seen, baseline);
  });
});
