/**
 * A stand-in for the RDMA device side of one transport, for host tests (the
 * host has no RDMA; the real queue pair is exercised in the rxe lab).
 *
 * What is real: the release list is @roce-rpc/verbs's native ReleaseList, the
 * one the Send CQ's routing appends to, and its answer to "was this push the
 * empty -> non-empty transition?". What is simulated: the queue pair (posts
 * are recorded; a reply's post drains the list, as the native call does) and
 * the Send CQ's routing (completeSends pushes wrIds, failed ones marked, and
 * on a transition wakes the transport synchronously, as a routing event
 * reports it; the lab tests run that path).
 */
import { ReleaseList } from '@roce-rpc/verbs';
import type { PreparedWrite, QueuePairPort } from '../../src/transport/transport.js';
import type { Registration, SendContext, SendResources } from '../../src/transport/send_context.js';
import type { RdmaSegment } from '../../src/header/chunks.js';

export interface PostedReply {
  readonly contextId: number;
  /** The Send's bytes, copied at post time. */
  readonly send: Buffer;
  readonly writes: readonly PreparedWrite[];
}

export class LoopbackDevice implements QueuePairPort, SendResources {
  readonly releaseList: ReleaseList;
  readonly postedReceives: number[] = [];
  readonly replies: PostedReply[] = [];
  /** Posted Sends whose completion has not been delivered yet, oldest first. */
  readonly inFlight: number[] = [];
  openRegistrations = 0;
  registrations = 0;
  disconnects = 0;
  failPosts = false;
  /** Called on each empty -> non-empty transition of the release list. */
  onReleasePending: () => void = () => {};

  constructor(capacity = 256) {
    this.releaseList = new ReleaseList(capacity);
  }

  register(bytes: Uint8Array): Registration {
    this.openRegistrations++;
    this.registrations++;
    let open = true;
    return {
      bytes,
      close: () => {
        if (!open) throw new Error('registration closed twice');
        open = false;
        this.openRegistrations--;
      },
    };
  }

  postReceive(slot: number): void {
    this.postedReceives.push(slot);
  }

  /** Records the post, then drains the release list as the native call does. */
  postReply(context: SendContext, writes: readonly PreparedWrite[], sendBytes: number, drainInto: Float64Array): number {
    if (this.failPosts) throw new Error('post failed');
    this.replies.push({ contextId: context.id, send: Buffer.from(context.buffer.bytes.subarray(0, sendBytes)), writes });
    this.inFlight.push(context.id);
    return this.releaseList.drainInto(drainInto);
  }

  /** Sends complete only when a test calls completeSends: nothing to route. */
  routeSendCompletions(): void {}

  /** Counted: the real device arms its Send CQ's events while someone waits. */
  sendCompletionWaits = 0;
  awaitSendCompletions(waiting: boolean): void {
    if (waiting) this.sendCompletionWaits++;
  }

  /** The requester's registered memory, by handle: what RDMA Reads copy from. */
  readonly remoteMemory = new Map<number, { base: bigint; bytes: Buffer }>();

  async readInto(segments: readonly RdmaSegment[], target: Registration, offset: number): Promise<void> {
    let at = offset;
    for (const segment of segments) {
      const remote = this.remoteMemory.get(segment.handle);
      if (remote === undefined) throw new Error(`remote access error: handle ${segment.handle}`);
      const start = Number(segment.offset - remote.base);
      target.bytes.set(remote.bytes.subarray(start, start + segment.length), at);
      at += segment.length;
    }
  }

  disconnect(): void {
    this.disconnects++;
  }

  /**
   * The completion thread: appends the oldest `count` Sends' wrIds; reports the
   * transition unless `notify` is false (a transition the transport missed).
   */
  completeSends(count: number, options: { notify?: boolean; failed?: boolean } = {}): void {
    for (const contextId of this.inFlight.splice(0, count)) {
      const transition = this.releaseList.push(contextId, options.failed === true);
      if (transition && options.notify !== false) this.onReleasePending();
    }
  }

  close(): void {
    this.releaseList.close();
  }
}
