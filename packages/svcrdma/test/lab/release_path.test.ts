/**
 * Inside the rxe lab: the seed's release path with the real completion
 * thread. The Send completion of the last reply on an idle connection is
 * released by the self-enqueue that the release list's native empty ->
 * non-empty transition triggers (no RPC follows, nothing polls); a client
 * that goes away with calls in flight is torn down after qp.drain(), so every
 * posted Send is accounted for before the contexts go, none reclaimed blind.
 */
import { until } from '@roce-rpc/lab';
import { authNone, writeCallHeader } from '@roce-rpc/oncrpc';
import { XdrWriter, xdrVoid } from '@roce-rpc/xdr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCallHeader, RdmaProcedure, RdmaRpcClient, SvcRdmaServer } from '../../src/index.js';
import { BarePeer } from './bare_peer.ts';
import { nullDispatcher } from './null_dispatcher.ts';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
const PROGRAM = 0x2000_0102;
/** Apart from the other lab files' ports (kernel svcrdma owns 20049). */
const PORT = 20053;
const VERSION = 1;

const dispatcher = nullDispatcher(PROGRAM, VERSION, 'RELEASEPATH');

let server: SvcRdmaServer;

beforeAll(() => {
  server = SvcRdmaServer.listen(dispatcher, { address, port: PORT });
});

afterAll(async () => {
  await server?.close();
});

describe('the release path on rxe0', () => {
  it('releases the last reply of an idle connection without any further RPC (the native transition wake)', async () => {
    // The peer posts no Receive until the server's RPC has ended, so the reply's Send waits in RNR
    // retries and completes only after that RPC's own release (between-rpcs) found the list
    // empty: with no RPC following, only the transition wake can bring its context back.
    const peer = await BarePeer.connect({ address, port: PORT, receivesAtConnect: false });
    try {
      await until(() => server.connections.size === 1, 'the connection');
      const [connection] = server.connections;
      const { transport } = connection!;
      const pool = transport.sendContexts.metrics;
      peer.send(nullCall(1));
      // The server's RPC runs on this thread from its send-context get to its release without a
      // macrotask in between, so a timer that sees the context in use runs after that release.
      await until(() => pool.inUse === 1, 'the reply to be posted');
      expect(pool.released['between-rpcs']).toBe(0);
      peer.postReceives();
      expect(await peer.pollUntil(() => peer.replies.length === 1, 20_000)).toBe(true);
      await until(() => pool.inUse === 0, 'the idle connection to release its last send context');
      console.log(`idle connection: transport ${JSON.stringify(transport.metrics)}; send contexts ${JSON.stringify(pool)}`);
      expect(pool.released['self-enqueue']).toBe(1);
      // One wake per transition, never per completion.
      expect(transport.metrics.selfEnqueues).toBe(1);
      expect(pool.failedSends).toBe(0);
    } finally {
      peer.close();
    }
    await until(() => server.connections.size === 0, 'the teardown');
  });

  it('tears down after qp.drain() when the client goes with calls in flight: nothing reclaimed blind, far within the 5 s fallback', async () => {
    const client = await RdmaRpcClient.connect({ address, port: PORT });
    await client.call(PROGRAM, VERSION, 0, xdrVoid, undefined, xdrVoid);
    const [connection] = server.connections;
    const pool = connection!.transport.sendContexts;
    const calls = Array.from({ length: 16 }, () => client.call(PROGRAM, VERSION, 0, xdrVoid, undefined, xdrVoid).catch(() => 'closed'));
    const closed = client.close();
    const started = performance.now();
    await until(() => server.connections.size === 0, 'the teardown');
    const teardownMs = performance.now() - started;
    await closed;
    await Promise.all(calls);
    console.log(`teardown after qp.drain(): ${teardownMs.toFixed(0)} ms; send contexts ${JSON.stringify(pool.metrics)}`);
    expect(pool.metrics.lostSends).toBe(0); // the 5 s fallback (destroy the QP, reclaim blind) was not needed
    expect(teardownMs).toBeLessThan(5000);
    expect(pool.metrics.inUse).toBe(0);
    expect(connection!.openRegistrations).toBe(0);
  });
});

function nullCall(xid: number): Buffer {
  const call = new XdrWriter();
  writeCallHeader(call, { xid, program: PROGRAM, version: VERSION, procedure: 0, credential: authNone, verifier: authNone });
  const header = encodeCallHeader({ xid, credits: 8, procedure: RdmaProcedure.MSG, callChunk: null, readChunks: [], writeList: [], replyChunk: null });
  return Buffer.concat([header, call.finish().toBuffer()]);
}
