/**
 * A peer killed mid-transfer: this process serves (the survivor), a client
 * process streams 256 KiB echoes and is SIGKILLed. The survivor must see
 * the connection end (disconnect or flushed completions), release it, and
 * keep serving new connections.
 */
import { afterAll, expect, it } from 'vitest';
import { liveObjects } from '../../dist/index.js';
import { startEchoServer, type EchoServer } from './support.ts';
import { startPeer } from './process.ts';

let server: EchoServer | undefined;

afterAll(() => server?.close());

it('a client killed mid-transfer ends its connection on the server, which keeps serving', async () => {
  server = startEchoServer(0);
  const ended = new Promise<string>((resolve) => (server!.onConnectionEnd = resolve));
  const doomed = startPeer('stream_client.ts', [String(server.port)]);
  await doomed.line(/^streaming$/);
  doomed.child.kill('SIGKILL');
  expect(await doomed.exited).toBe('SIGKILL');
  const reason = await ended;
  expect(['RDMA_CM_EVENT_DISCONNECTED', 'IBV_WC_WR_FLUSH_ERR', 'IBV_WC_RETRY_EXC_ERR']).toContain(reason);

  const next = startPeer('echo_client.ts', [String(server.port), '20']);
  await next.line(/^ok 20$/);
  expect(await next.exited).toBe(0);
  expect(server.accepted).toBe(2);
});

it('releases every native object of the ended connections', async () => {
  // The second client disconnected cleanly; give its DISCONNECTED event a moment.
  const deadline = Date.now() + 20_000;
  while ((liveObjects()['QueuePair'] ?? 0) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  expect(liveObjects()['QueuePair'] ?? 0).toBe(0);
  server!.close();
  server = undefined;
  expect(liveObjects()).toEqual({});
});
