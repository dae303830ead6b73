/**
 * Inside the rxe lab: no Receive waits for a lost or late wake-up. The server's
 * Receive CQ is notified (the native completion thread wakes the event loop once
 * per burst, which then takes completions every loop turn until the burst ends);
 * a wake lost on the way back to idle would leave a call unanswered until the
 * client's timeout, and one recovered late (a fallback timer, a thread backing off)
 * shows as a round trip far above the emulated guest's tens of milliseconds.
 * The bounds are generous on purpose (a loaded 2-vCPU TCG guest): they catch
 * wake-ups that are lost or recovered by a timer, not small slowdowns.
 */
import { xdrVoid } from '@roce-rpc/xdr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RdmaRpcClient, SvcRdmaServer } from '../../src/index.js';
import { nullDispatcher } from './null_dispatcher.ts';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
const PROGRAM = 0x2000_0103;
/** Apart from the other lab files' ports (kernel svcrdma owns 20049). */
const PORT = 20057;
const VERSION = 1;
/** Sequential calls per case: enough that a wake lost now and then shows. */
const CALLS = 40;
/** Median NULL round trip allowed: measured 4-20 ms in the loaded lab, ~40 ms when every Receive paid two thread wake-ups. */
const MEDIAN_BOUND_MS = 200;
/** Any single round trip: far below the client's 10 s timeout and rxe's ~1 s retransmission timer. */
const CALL_BOUND_MS = 2000;
/** Longer than the poller's 20 ms burst window: the next call must come through a fresh wake. */
const IDLE_PAUSE_MS = 40;

const dispatcher = nullDispatcher(PROGRAM, VERSION, 'WAKELATENCY');

let server: SvcRdmaServer;
let client: RdmaRpcClient;

beforeAll(async () => {
  server = SvcRdmaServer.listen(dispatcher, { address, port: PORT });
  client = await RdmaRpcClient.connect({ address, port: PORT, timeoutMs: 10_000 });
  await client.call(PROGRAM, VERSION, 0, xdrVoid, undefined, xdrVoid);
});

afterAll(async () => {
  await client?.close();
  await server?.close();
});

async function timedCalls(pauseMs: number): Promise<number[]> {
  const times: number[] = [];
  for (let call = 0; call < CALLS; call++) {
    if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    const begin = performance.now();
    await client.call(PROGRAM, VERSION, 0, xdrVoid, undefined, xdrVoid);
    times.push(performance.now() - begin);
  }
  return times;
}

function median(times: number[]): number {
  return [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

describe('Receive wake-ups on rxe0', () => {
  it('answers back-to-back NULL calls within the bounds (burst mode takes them)', async () => {
    const times = await timedCalls(0);
    console.log(`back-to-back: median ${median(times).toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms; poller ${JSON.stringify(server.poller.metrics)}`);
    expect(median(times)).toBeLessThan(MEDIAN_BOUND_MS);
    expect(Math.max(...times)).toBeLessThan(CALL_BOUND_MS);
  });

  it('answers each call after an idle pause through a fresh wake, none lost on the way back to idle', async () => {
    const wakesBefore = server.poller.metrics.wakes;
    const times = await timedCalls(IDLE_PAUSE_MS);
    const wakes = server.poller.metrics.wakes - wakesBefore;
    console.log(`after idle pauses: median ${median(times).toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms, ${wakes} wakes for ${CALLS} calls`);
    expect(median(times)).toBeLessThan(MEDIAN_BOUND_MS);
    expect(Math.max(...times)).toBeLessThan(CALL_BOUND_MS);
    // Most calls arrive after the burst window closed: the armed CQ's wake delivered them.
    expect(wakes).toBeGreaterThanOrEqual(CALLS / 2);
  });
});
