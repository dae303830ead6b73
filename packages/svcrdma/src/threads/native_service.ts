/**
 * The verbs core's service queue and service transports (crates/verbs
 * service_queue.rs, service_transport.rs), typed. They are not part of
 * @roce-rpc/verbs' object API: they live in a process-wide registry by id, so
 * the main thread and every worker thread reach the same native transport.
 *
 * The addon is the one @roce-rpc/verbs loads (ROCE_VERBS_NATIVE, else its
 * package root's); within one thread Node hands back the instance already loaded.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What serviceTransportMetrics returns (native counters of one transport). */
export interface NativeTransportMetrics {
  receives: number;
  emptyReceives: number;
  selfEnqueues: number;
  sqWaits: number;
  allocations: number;
  exhausted: number;
  failedSends: number;
  lostSends: number;
  /** Replies not posted: no send context (Send Queue room, write buffer) in time, or the transport closing. */
  droppedReplies: number;
  /** Calls whose Read chunks were pulled (RDMA Read), their bytes, calls whose Reads failed. */
  readCalls: number;
  readBytes: number;
  readFailures: number;
  /** Replies that posted RDMA Writes (Write chunks, Reply chunk), and the bytes written. */
  writeReplies: number;
  writtenBytes: number;
  inUse: number;
  /** Chunk buffers taken now: read buffers held by calls, write buffers by undrained contexts. */
  chunkBuffersInUse: number;
  postedReceives: number;
  openRegistrations: number;
  /** State now: BUSY 1, DATA 2, CLOSE 4. */
  flags: number;
  /** Completed Receives no worker has taken yet. */
  queuedReceives: number;
  /** Completed Sends on the release list, waiting for a drain (contexts still counted in inUse). */
  releasePending: number;
  drains: Record<string, number>;
  released: Record<string, number>;
  batchSizes: number[];
  /** Only from serviceTransportFinish: contexts not free at the end (a leak). */
  leakedContexts?: number;
}

export interface ServiceQueueStats {
  enqueues: number;
  takes: number;
  sleeps: number;
  timeouts: number;
  queued: number;
}

export interface TransportBuffers {
  readonly receive: ArrayBuffer;
  readonly send: ArrayBuffer;
  /** The chunk buffers (read buffers first), `chunkBytes` each. */
  readonly chunk: ArrayBuffer;
  readonly slotBytes: number;
  readonly contextBytes: number;
  readonly chunkBytes: number;
  readonly readBuffers: number;
  readonly credits: number;
  readonly sendQueueDepth: number;
}

export interface NativeService {
  /** Takes receive up to `callsPerTake` calls of one transport (1..CALLS_PER_TAKE_MAX). */
  serviceQueueCreate(callsPerTake: number): number;
  /** A transport with calls (their Receives in the seat's mailbox, the receive step ended), or 0. */
  serviceQueueTake(queueId: number, worker: number, waitMs: number): number;
  /** The seat's mailbox (MailboxWord) and staging bytes (from STAGING_OFFSET), shared by every worker on the seat. */
  serviceQueueSeatArea(queueId: number, worker: number): ArrayBuffer;
  serviceQueueVacate(queueId: number, worker: number): number;
  serviceQueueStats(queueId: number): ServiceQueueStats;
  serviceQueueClose(queueId: number): void;
  serviceTransportCreate(
    queueId: number,
    cmId: unknown,
    protectionDomain: unknown,
    credits: number,
    slotBytes: number,
    contextsMax: number,
    contextBytes: number,
    sendQueueDepth: number,
    busyPollMicros: number,
    chunkBytes: number,
    onClose: () => void,
  ): number;
  serviceTransportBuffers(transportId: number): TransportBuffers;
  /** `segments`: SEGMENT_WORDS words per segment. Returns a read buffer, or a ReadStatus. */
  serviceTransportReadChunks(transportId: number, worker: number, segments: Uint32Array, waitMs: number): number;
  serviceTransportReadWait(transportId: number, worker: number, waitMs: number): number;
  /** (writeBuffer + 1) * CONTEXT_FACTOR + context, or -1. */
  serviceTransportGetSendContext(transportId: number, worker: number, waitMs: number, workRequests: number, withWriteBuffer: boolean): number;
  /**
   * Posts the calls' replies — `stagedReplies` staged end to end (their lengths in the mailbox's
   * REPLY_LENGTHS words; one chained post), then, with `context`, that context's reply of
   * `replyLength` bytes after its Writes — releases the calls, and takes the next if
   * `takeWaitMs` > 0 (0: none). A reply not posted counts in the transport's droppedReplies.
   */
  serviceTransportFinishCall(transportId: number, worker: number, queueId: number, takeWaitMs: number, stagedReplies: number, context?: number, replyLength?: number, writes?: Uint32Array): number;
  /** Posts replies as FinishCall does, without the release: before a procedure that answers later, or a reply with its own context. */
  serviceTransportPostReplies(transportId: number, worker: number, queueId: number, stagedReplies: number, context?: number, replyLength?: number, writes?: Uint32Array): void;
  serviceTransportClose(transportId: number): void;
  serviceTransportIdle(transportId: number): boolean;
  serviceTransportDrainQueuePair(transportId: number, onDrained: () => void): void;
  serviceTransportFinish(transportId: number, reclaimPosted: boolean): NativeTransportMetrics;
  serviceTransportMetrics(transportId: number): NativeTransportMetrics;
}

/** Most calls one take receives (verbs' service_seat.rs CALLS_PER_TAKE_MAX). */
export const CALLS_PER_TAKE_MAX = 8;
/**
 * A seat's mailbox (verbs' service_seat.rs), a Uint32Array at the start of its area: word
 * CALLS, how many calls the take left; then CALL_WORDS per call (call `index`'s at
 * `callWord(index, field)`): its Receive slot and length and, for a plain call (RDMA_MSG
 * without chunks, recognised natively: verbs' service_call_header.rs), its header's length,
 * xid and credits asked, else PLAIN_HEADER_BYTES 0; then from REPLY_LENGTHS the lengths of the
 * replies staged end to end from STAGING_OFFSET, in call order.
 */
export const CallWord = { SLOT: 0, BYTE_LENGTH: 1, PLAIN_HEADER_BYTES: 2, PLAIN_XID: 3, PLAIN_CREDITS: 4 } as const;
export const CALL_WORDS = Object.keys(CallWord).length;
export const MailboxWord = { CALLS: 0, REPLY_LENGTHS: 1 + CALLS_PER_TAKE_MAX * CALL_WORDS } as const;
export const MAILBOX_WORDS = MailboxWord.REPLY_LENGTHS + CALLS_PER_TAKE_MAX;
/** The mailbox word of call `index`'s `field` (CallWord): verbs' service_seat.rs call_word. */
export function callWord(index: number, field: number): number {
  return 1 + index * CALL_WORDS + field;
}
/** Where a seat's staging bytes begin (after the mailbox), and how many: at least one reply of the largest send context. */
export const STAGING_OFFSET = MAILBOX_WORDS * 4;
export const STAGING_BYTES = 65536;
/** serviceTransportGetSendContext's number: (writeBuffer + 1) * CONTEXT_FACTOR + context. */
export const CONTEXT_FACTOR = 2 ** 32;
/** Words of one segment in a segment list: handle, length, address high word, address low word. */
export const SEGMENT_WORDS = 4;
/** What serviceTransportReadChunks / ReadWait return instead of a read buffer. */
export const ReadStatus = { FAILED: -1, BUSY: -2, IN_FLIGHT: -3, REFUSED: -4 } as const;
/** Longest one take or send-context wait may block a worker (the native TAKE_WAIT_MAX is 1 s). */
export const NATIVE_WAIT_MAX_MS = 1000;
/** Worker seats of one queue (the native WORKERS_MAX). */
export const WORKER_SEATS_MAX = 64;

/** The file @roce-rpc/verbs loads (its ROCE_VERBS_NATIVE first): two instances would not share handles. */
function load(): NativeService {
  const verbsEntry = fileURLToPath(import.meta.resolve('@roce-rpc/verbs'));
  const addon = process.env['ROCE_VERBS_NATIVE'] || join(dirname(verbsEntry), '..', 'roce-verbs.linux-x64-gnu.node');
  return createRequire(import.meta.url)(addon) as NativeService;
}

export const nativeService: NativeService = load();

/** The seat mailbox's layout is shared with the addon: one built before several calls per take would misread it. */
export function assertCurrentAddon(): void {
  if (typeof nativeService.serviceTransportPostReplies !== 'function') {
    throw new Error('the @roce-rpc/verbs addon predates this svcrdma (no serviceTransportPostReplies): rebuild it (pnpm --filter @roce-rpc/verbs build)');
  }
}
