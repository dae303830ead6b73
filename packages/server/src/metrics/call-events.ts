/**
 * Calls that run in RxRPC channel worker threads are counted there and
 * posted, in batches, to their process's main thread over a
 * BroadcastChannel (process-wide, so no hook in the rxrpc package is needed).
 * With `rxThreads` 0 the channels (and the service module) run on the main
 * thread itself, and records go straight to its listener.
 *
 * Life: a CallRecordBatcher per channel worker thread, created by the RxRPC
 * service module at import; the main thread's listener by the ServerProcess.
 */
import { BroadcastChannel, isMainThread } from 'node:worker_threads';
import type { CallRecord } from './call-metrics.js';

const CHANNEL_NAME = 'rocerpc-call-records';
/** Records per message: bounds a batch to ~16 KiB of structured clone. */
const BATCH_RECORDS_MAX = 256;
/** Longest a record waits before it is posted; well below any scrape interval. */
const BATCH_DELAY_MS = 50;

/** The main thread's listener, when receiveCallRecords() runs in this thread. */
let localListener: ((call: CallRecord) => void) | undefined;

export class CallRecordBatcher {
  private readonly channel = new BroadcastChannel(CHANNEL_NAME);
  private batch: CallRecord[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor() {
    this.channel.unref();
  }

  add(record: CallRecord): void {
    if (isMainThread && localListener !== undefined) return localListener(record);
    this.batch.push(record);
    if (this.batch.length >= BATCH_RECORDS_MAX) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), BATCH_DELAY_MS);
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.batch;
    this.batch = [];
    this.channel.postMessage(batch);
  }
}

/** Main thread: hands every posted record to `record`; returns the function that stops listening. */
export function receiveCallRecords(record: (call: CallRecord) => void): () => void {
  const channel = new BroadcastChannel(CHANNEL_NAME);
  channel.unref();
  channel.onmessage = (event) => {
    for (const call of (event as { data: CallRecord[] }).data) record(call);
  };
  localListener = record;
  return () => {
    localListener = undefined;
    channel.close();
  };
}
