/**
 * ThreadedConnection: the main thread's side of one connection served by
 * worker threads — the connection manager's part only. It creates the native
 * service transport on the adopted CmId before the accept (CQs, release list,
 * registered memory, QP, Receives posted), and tears it down in the seed's
 * order; the RPCs themselves never touch this thread.
 *
 * Teardown (on 'disconnected', or when the transport closes itself: a failed
 * Send, a flushed Receive, a header that asks for a disconnect):
 *   1. CLOSE is set natively (no new posts, workers give up) and the QP is
 *      moved to the error state by rdma_disconnect;
 *   2. wait until no worker uses the transport (svc_xprt refcount: the RPCs
 *      in service finish, their releases drain);
 *   3. qp.drain (ib_drain_qp): every posted Send's completion is on the release list;
 *   4. finish: drain (teardown point), Receives flushed, contexts checked,
 *      QP destroyed, CQs and registrations gone; then the CmId is closed.
 * If the drain does not finish within QP_DRAIN_WAIT_MS the QP is destroyed
 * first and still-posted contexts are reclaimed (`lostSends`).
 *
 * Life: created by SvcRdmaThreadedServer per connect request, owned by its
 * connection table until `onClosed`. Main thread.
 */
import assert from 'node:assert';
import type { CmId, ProtectionDomain } from '@roce-rpc/verbs';
import type { ConnectPrivateData } from '../header/private_data.js';
import type { FilledSvcRdmaOptions } from '../options.js';
import { MAX_SPECIAL_CHUNK_BYTES } from '../protocol.js';
import { nativeService, type NativeTransportMetrics } from './native_service.js';

/** Time to wait for the queue pair to drain after a disconnect: far above rxe's flush time. */
const QP_DRAIN_WAIT_MS = 5000;
/** Time the RPCs in service get to finish before teardown goes on without them. */
const IDLE_WAIT_MS = 30_000;
const IDLE_POLL_MS = 2;

export class ThreadedConnection {
  readonly transportId: number;
  private tornDown = false;
  /** The native counters at teardown (null while open). */
  finalMetrics: NativeTransportMetrics | null = null;

  constructor(
    readonly cmId: CmId,
    protectionDomain: ProtectionDomain,
    queueId: number,
    options: FilledSvcRdmaOptions,
    peer: ConnectPrivateData,
    private readonly onClosed: (connection: ThreadedConnection) => void,
  ) {
    this.transportId = nativeService.serviceTransportCreate(
      queueId,
      cmId.handle,
      protectionDomain.handle,
      options.credits,
      options.receiveInlineBytes,
      options.sendContextsMax,
      // Our largest Send is the client's receive size (RFC 8797), within our inline bound.
      Math.min(options.receiveInlineBytes, peer.receiveBytes),
      options.sendQueueDepth,
      options.busyPollMicros,
      // A chunk buffer holds the largest Read list or Reply chunk the header decoder lets through.
      MAX_SPECIAL_CHUNK_BYTES,
      () => void this.teardown(),
    );
    cmId.once('disconnected', () => void this.teardown());
  }

  /** Counters now (live) or at teardown. */
  metrics(): NativeTransportMetrics {
    return this.finalMetrics ?? nativeService.serviceTransportMetrics(this.transportId);
  }

  disconnect(): void {
    void this.teardown();
  }

  async teardown(): Promise<void> {
    if (this.tornDown) return;
    this.tornDown = true;
    nativeService.serviceTransportClose(this.transportId);
    try {
      this.cmId.disconnect();
    } catch {
      // Already disconnected: the QP went to the error state all the same.
    }
    await this.waitUntilIdle();
    const drained = await this.drainQueuePair();
    this.finalMetrics = nativeService.serviceTransportFinish(this.transportId, !drained);
    assert.equal(this.finalMetrics.leakedContexts, 0, `send contexts still in use at teardown of transport ${this.transportId}`);
    this.cmId.close();
    this.onClosed(this);
  }

  private async waitUntilIdle(): Promise<void> {
    for (const deadline = performance.now() + IDLE_WAIT_MS; performance.now() < deadline; ) {
      if (nativeService.serviceTransportIdle(this.transportId)) return;
      await new Promise((resolve) => setTimeout(resolve, IDLE_POLL_MS));
    }
  }

  private drainQueuePair(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), QP_DRAIN_WAIT_MS);
      try {
        nativeService.serviceTransportDrainQueuePair(this.transportId, () => {
          clearTimeout(timer);
          resolve(true);
        });
      } catch {
        clearTimeout(timer);
        resolve(false);
      }
    });
  }
}
