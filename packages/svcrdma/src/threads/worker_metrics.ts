/**
 * Per-worker RPC counters in one SharedArrayBuffer: each worker thread writes
 * only its own row (its seat), the main thread sums the rows. A replacement
 * worker keeps adding to its dead predecessor's row, so nothing counted is lost.
 *
 * Life: created by the worker pool (main thread) with one row per seat, handed
 * to each worker in its workerData; lives as long as the pool.
 */
export const WORKER_COUNTERS = [
  /** Calls taken from the service queue (a take, or the end of the previous call, received each). */
  'served',
  /** RPC calls received (after an empty receive nothing is counted). */
  'calls',
  /** Inline replies answered (counted before their post; the transports' droppedReplies counts those not posted). */
  'inlineReplies',
  /** Replies that pushed bytes by RDMA Write (Write chunks, Reply chunk) before their Send. */
  'chunkReplies',
  /** RDMA_ERROR replies (header rejections, chunk errors). */
  'errorReplies',
  /** Calls refused by the transport-header decoder. */
  'rejected',
  /** ERR_CHUNK answered past the decoder: Reads refused or failed, a reply that fits no chunk or buffer. */
  'chunkErrors',
  /** Errors of ours while serving (the transport is closed; the worker goes on). */
  'failures',
] as const;
export type WorkerCounter = (typeof WORKER_COUNTERS)[number];
export type WorkerCounters = Record<WorkerCounter, number>;

const COLUMNS = WORKER_COUNTERS.length;
/** Each counter's column: a property load per add, not a search of the names (three adds per RPC). */
const COLUMN_OF = Object.freeze(Object.fromEntries(WORKER_COUNTERS.map((name, column) => [name, column]))) as Readonly<Record<WorkerCounter, number>>;

/** One worker's row. */
export class WorkerCounterRow {
  private readonly row: Float64Array;

  constructor(shared: SharedArrayBuffer, seat: number) {
    this.row = new Float64Array(shared, seat * COLUMNS * Float64Array.BYTES_PER_ELEMENT, COLUMNS);
  }

  add(counter: WorkerCounter, amount = 1): void {
    this.row[COLUMN_OF[counter]]! += amount;
  }
}

/** Rows for `seats` workers. */
export function createCounterTable(seats: number): SharedArrayBuffer {
  return new SharedArrayBuffer(seats * COLUMNS * Float64Array.BYTES_PER_ELEMENT);
}

/** Every row summed (a snapshot: rows are written while we read). */
export function sumCounters(shared: SharedArrayBuffer): WorkerCounters {
  const all = new Float64Array(shared);
  const sums = Object.fromEntries(WORKER_COUNTERS.map((name) => [name, 0])) as WorkerCounters;
  for (let index = 0; index < all.length; index++) sums[WORKER_COUNTERS[index % COLUMNS]!] += all[index]!;
  return sums;
}
