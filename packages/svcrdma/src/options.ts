/**
 * Transport options: SvcRdmaOptions (all optional) -> FilledSvcRdmaOptions (all
 * set) from defaultSvcRdmaOptions, validated in one place with messages that
 * name the field. Every value here bounds a queue, a pool or a buffer.
 */
import {
  DEFAULT_CREDITS,
  DEFAULT_PORT,
  DEFAULT_RECEIVE_INLINE_BYTES,
  MAX_CREDITS,
  MAX_RECEIVE_INLINE_BYTES,
  MIN_CREDITS,
  MIN_RECEIVE_INLINE_BYTES,
} from './protocol.js';
import { SvcRdmaError, SvcRdmaErrorCode } from './errors.js';

export interface SvcRdmaOptions {
  /** Address to listen on (rdma_cm bind). */
  address?: string;
  /** Port to listen on; 20049 is NFS over RDMA's. */
  port?: number;
  /** Credits per connection = Receives kept posted per connection. */
  credits?: number;
  /** Bytes per posted Receive, advertised to the client (RFC 8797). */
  receiveInlineBytes?: number;
  /** Send Queue entries per connection: Sends and RDMA Writes/Reads in flight. */
  sendQueueDepth?: number;
  /** Bound on send contexts per connection (in flight + awaiting release). */
  sendContextsMax?: number;
  /** Completion threads (on worker threads: the idle worker that polls the channels) keep polling this long after a completion before sleeping. */
  busyPollMicros?: number;
  /**
   * How Receive completions reach the transport: 'threaded' (a completion thread
   * wakes JavaScript) or 'polled' (a notified CQ: the native thread polls, the event loop takes the completions once per wake; see EventLoopPoller).
   */
  receiveCompletions?: 'threaded' | 'polled';
  /**
   * 'polled' only: after a wake the event loop keeps taking Receives every loop turn until this
   * many ms pass without one (EventLoopPoller's burst mode); 0 takes them only when woken.
   */
  receiveBurstWindowMs?: number;
}

export interface FilledSvcRdmaOptions {
  readonly address: string;
  readonly port: number;
  readonly credits: number;
  readonly receiveInlineBytes: number;
  readonly sendQueueDepth: number;
  readonly sendContextsMax: number;
  readonly busyPollMicros: number;
  readonly receiveCompletions: 'threaded' | 'polled';
  readonly receiveBurstWindowMs: number;
}

/**
 * Work requests one reply may post: its Send plus three RDMA Writes, enough for
 * a Write chunk of up to three segments (a typical NFS READ reply).
 */
export const WORK_REQUESTS_PER_REPLY = 4;
/** A completion thread spinning longer than 10 ms is a busy loop, not a latency trade. */
export const MAX_BUSY_POLL_MICROS = 10_000;
/** Largest Send Queue we ask a device for; rxe and mlx5 allow far more. */
export const MAX_SEND_QUEUE_DEPTH = 32768;
/** A burst window over a second is an event loop that never sleeps, not a latency trade. */
export const MAX_RECEIVE_BURST_WINDOW_MS = 1000;

export const defaultSvcRdmaOptions: FilledSvcRdmaOptions = Object.freeze({
  address: '0.0.0.0',
  port: DEFAULT_PORT,
  credits: DEFAULT_CREDITS,
  receiveInlineBytes: DEFAULT_RECEIVE_INLINE_BYTES,
  // One full reply per granted credit in flight.
  sendQueueDepth: DEFAULT_CREDITS * WORK_REQUESTS_PER_REPLY,
  // One per granted credit in flight, plus as many again whose Send completed but
  // that wait for the worker's next drain of the release list.
  sendContextsMax: DEFAULT_CREDITS * 2,
  // A sleeping completion thread costs a wake-up per completion (hundreds of µs
  // in an emulated guest); 0 keeps idle servers idle.
  busyPollMicros: 0,
  // Polling from the event loop beats a thread wake-up per completion by an order
  // of magnitude in the lab (bench/null_rpc.bench.ts) and costs a timer when idle.
  receiveCompletions: 'polled',
  // No burst window: every Receive wakes the loop through its CQ's event. In the
  // lab, the loop spinning 20 ms after each wake took CPU from the client and rxe
  // on the guest's two vCPUs: the kernel NFS client's creates and our own NULL
  // client's calls/s were better without it (svcrdma README, main-thread path).
  receiveBurstWindowMs: 0,
});

function badOption(field: string, value: unknown, expectation: string): never {
  throw new SvcRdmaError(SvcRdmaErrorCode.BAD_OPTION, `option ${field} must be ${expectation}, got ${String(value)}`);
}

function integerIn(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    badOption(field, value, `an integer in [${min}, ${max}]`);
  }
  return value;
}

/** Fills and validates; derived defaults (queue depth, pool bound) follow `credits`. */
export function fillSvcRdmaOptions(options: SvcRdmaOptions = {}): FilledSvcRdmaOptions {
  const credits = integerIn('credits', options.credits ?? defaultSvcRdmaOptions.credits, MIN_CREDITS, MAX_CREDITS);
  const address = options.address ?? defaultSvcRdmaOptions.address;
  if (typeof address !== 'string' || address.length === 0) badOption('address', address, 'a non-empty string');
  const filled: FilledSvcRdmaOptions = {
    address,
    port: integerIn('port', options.port ?? defaultSvcRdmaOptions.port, 1, 65535),
    credits,
    receiveInlineBytes: integerIn(
      'receiveInlineBytes',
      options.receiveInlineBytes ?? defaultSvcRdmaOptions.receiveInlineBytes,
      MIN_RECEIVE_INLINE_BYTES,
      MAX_RECEIVE_INLINE_BYTES,
    ),
    sendQueueDepth: integerIn(
      'sendQueueDepth',
      options.sendQueueDepth ?? credits * WORK_REQUESTS_PER_REPLY,
      credits,
      MAX_SEND_QUEUE_DEPTH,
    ),
    sendContextsMax: integerIn('sendContextsMax', options.sendContextsMax ?? credits * 2, credits, MAX_CREDITS * 2),
    busyPollMicros: integerIn('busyPollMicros', options.busyPollMicros ?? defaultSvcRdmaOptions.busyPollMicros, 0, MAX_BUSY_POLL_MICROS),
    receiveCompletions: options.receiveCompletions ?? defaultSvcRdmaOptions.receiveCompletions,
    receiveBurstWindowMs: integerIn(
      'receiveBurstWindowMs',
      options.receiveBurstWindowMs ?? defaultSvcRdmaOptions.receiveBurstWindowMs,
      0,
      MAX_RECEIVE_BURST_WINDOW_MS,
    ),
  };
  if (filled.receiveCompletions !== 'threaded' && filled.receiveCompletions !== 'polled') {
    badOption('receiveCompletions', filled.receiveCompletions, "'threaded' or 'polled'");
  }
  if (filled.receiveInlineBytes % 1024 !== 0) {
    badOption('receiveInlineBytes', filled.receiveInlineBytes, 'a multiple of 1024 (RFC 8797 encodes KiB)');
  }
  return Object.freeze(filled);
}

/** Worker threads of a threaded server: the native service queue has this many seats. */
export const MAX_THREADS = 64;
/** Calls of one connection a worker's take may receive at once: a seat's mailbox holds this many. */
export const MAX_CALLS_PER_TAKE = 8;
/**
 * Calls of one connection a worker takes at once, by default: queued calls cost one crossing
 * into the verbs core and their inline replies one chained post (measured: README, *Several
 * calls per take*). A batch's replies wait for its later calls' procedures (never for one
 * that answers with a promise), so a batch is short.
 */
export const DEFAULT_CALLS_PER_TAKE = 8;

/** A server whose RPCs run on worker threads (SvcRdmaThreadedServer). */
export interface SvcRdmaThreadsOptions extends Omit<SvcRdmaOptions, 'receiveCompletions'> {
  /** Worker threads serving every connection (nfsd threads). */
  threads: number;
  /**
   * Module each worker imports (a path or file: URL): it exports
   * `createCallHandler(serviceOptions)` returning the CallHandler (e.g. an oncrpc
   * Dispatcher), or a CallHandler as its default export.
   */
  serviceModule: string | URL;
  /** Handed to `createCallHandler` in every worker (structured-cloned). */
  serviceOptions?: unknown;
  /** Most calls of one connection a worker's take receives at once (1..MAX_CALLS_PER_TAKE, default DEFAULT_CALLS_PER_TAKE). */
  callsPerTake?: number;
}

export interface FilledSvcRdmaThreadsOptions extends FilledSvcRdmaOptions {
  readonly threads: number;
  /** An absolute file: URL or module specifier. */
  readonly serviceModule: string;
  readonly serviceOptions: unknown;
  readonly callsPerTake: number;
}

export function fillSvcRdmaThreadsOptions(options: SvcRdmaThreadsOptions): FilledSvcRdmaThreadsOptions {
  const { threads, serviceModule, serviceOptions, callsPerTake, ...transport } = options;
  const filled = fillSvcRdmaOptions(transport);
  // Every posted Send holds a context on worker threads: contexts bound the Send Queue's use.
  if (filled.sendContextsMax > filled.sendQueueDepth) {
    badOption('sendContextsMax', filled.sendContextsMax, `at most sendQueueDepth (${filled.sendQueueDepth}) with threads`);
  }
  if (!(typeof serviceModule === 'string' && serviceModule.length > 0) && !(serviceModule instanceof URL)) {
    badOption('serviceModule', serviceModule, 'a module path or URL');
  }
  return Object.freeze({
    ...filled,
    threads: integerIn('threads', threads, 1, MAX_THREADS),
    serviceModule: serviceModule instanceof URL ? serviceModule.href : serviceModule,
    serviceOptions: serviceOptions ?? null,
    callsPerTake: integerIn('callsPerTake', callsPerTake ?? DEFAULT_CALLS_PER_TAKE, 1, MAX_CALLS_PER_TAKE),
  });
}
