/**
 * A service worker thread: the svc_recv loop of an nfsd thread. It blocks in
 * the verbs core until a transport has calls (`serviceQueueTake`: woken in
 * epoll_wait or the futex by the Receive's completion or a release-list
 * transition, with no event-loop hop), serves the calls it received
 * (WorkerTransport), and takes the next in the same native call that posts
 * the replies and releases the RPCs. Every native take that times out, and every SERVED_PER_YIELD takes, it
 * lets its event loop run (messages from the pool: 'stop', transports torn
 * down).
 *
 * Life: started by the WorkerPool (main thread) with its seat, the service
 * queue's id and the service module; it imports the module and builds its
 * CallHandler from it (`createCallHandler(serviceOptions)` or the default
 * export), as piscina loads a task module. Ends when told to stop; an
 * uncaught error ends it too, and the pool gives its seat to a replacement.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { strict as assert } from 'node:assert';
import type { CallHandler } from '../transport/transport.js';
import { nativeService } from './native_service.js';
import { WorkerCounterRow } from './worker_metrics.js';
import { WorkerTransport } from './worker_transport.js';
import type { PoolMessage, WorkerData } from './worker_pool.js';

/** How long one take blocks before the event loop gets a turn: bounds the reaction to 'stop'. */
const TAKE_WAIT_MS = 50;
/** Takes served back to back before the event loop gets a turn (timers, messages). */
const SERVED_PER_YIELD = 64;
/** Transports this worker keeps a view of: bounded by the queue's transports; pruned on teardown messages. */
const TRANSPORT_VIEWS_MAX = 4096;

const data = workerData as WorkerData;
const counters = new WorkerCounterRow(data.counters, data.seat);
const views = new Map<number, WorkerTransport>();
/** The seat's mailbox (the call a take received) and staging bytes (a reply to post), native memory. */
const seatArea = nativeService.serviceQueueSeatArea(data.queueId, data.seat);
let stopping = false;

parentPort!.on('message', (message: PoolMessage) => {
  if (message.type === 'stop') stopping = true;
  else views.delete(message.transportId);
});

async function loadHandler(): Promise<CallHandler> {
  const service = (await import(data.serviceModule)) as { createCallHandler?: (options: unknown) => CallHandler | Promise<CallHandler>; default?: CallHandler };
  if (typeof service.createCallHandler === 'function') return service.createCallHandler(data.serviceOptions);
  assert(service.default !== undefined && typeof service.default.handleCall === 'function', `${data.serviceModule} exports neither createCallHandler() nor a default CallHandler`);
  return service.default;
}

function viewOf(transportId: number, handler: CallHandler): WorkerTransport {
  let view = views.get(transportId);
  if (view === undefined) {
    assert(views.size < TRANSPORT_VIEWS_MAX, 'more transport views than the service queue has transports');
    view = new WorkerTransport(transportId, data.queueId, data.seat, handler, counters, seatArea);
    views.set(transportId, view);
  }
  return view;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function serve(handler: CallHandler): Promise<void> {
  let servedSinceYield = 0;
  // A transport taken with calls (in the mailbox) is served before the worker stops.
  let taken = 0;
  while (!stopping || taken !== 0) {
    if (taken === 0) taken = nativeService.serviceQueueTake(data.queueId, data.seat, TAKE_WAIT_MS);
    if (taken === 0) {
      servedSinceYield = 0;
      await yieldToEventLoop();
      continue;
    }
    counters.add('served');
    const transportId = taken;
    const yieldAfter = ++servedSinceYield >= SERVED_PER_YIELD || stopping;
    taken = 0;
    try {
      // Awaited only when a procedure answered with a promise: no microtask hop otherwise.
      const next = viewOf(transportId, handler).serveCalls(yieldAfter ? 0 : TAKE_WAIT_MS);
      taken = typeof next === 'number' ? next : await next;
    } catch (error) {
      // Torn down under us after the pool's idle wait gave up: forget it.
      if ((error as { code?: string }).code === 'ERR_VERBS_CLOSED') views.delete(transportId);
      // Ours, not the procedure's (the dispatcher answers those): the transport was closed.
      else parentPort!.postMessage({ type: 'failure', message: String((error as Error)?.stack ?? error) });
    }
    if (yieldAfter) {
      servedSinceYield = 0;
      await yieldToEventLoop();
    }
  }
}

const handler = await loadHandler();
parentPort!.postMessage({ type: 'ready' });
await serve(handler);
parentPort!.close();
