/**
 * Counters and gauges. Each thread owns one RxCounters (plain numbers, no
 * sharing); workers post snapshots to the main thread, which sums them for
 * rxdebug and for the server package's prom-client exporter.
 */
import { CHANNELS_PER_CONNECTION, PACKET_TYPE_COUNT } from './protocol.js';

export interface CounterSnapshot {
  /** Index type - 1 (DATA at 0 ... VERSION at 12). */
  packetsRead: number[];
  packetsSent: number[];
  dataPacketsRead: number;
  dupPacketsRead: number;
  spuriousPacketsRead: number;
  ackPacketsRead: number;
  dataPacketsSent: number;
  dataPacketsReSent: number;
  dataPacketsPushed: number;
  ackPacketsSent: number;
  pingPacketsSent: number;
  abortPacketsSent: number;
  busyPacketsSent: number;
  busyPacketsRead: number;
  /** Packets dropped before reaching a call (bad header, unknown connection, stale call number...). */
  packetsRejected: number;
  /** A previous call's final ACK that arrived after the next call had already started on its channel. */
  staleFinalAcks: number;
  /** Calls completed implicitly because the next call's first DATA arrived before their final ACK. */
  callsCompletedByNextCall: number;
  callsStarted: number;
  /** Calls started per channel index (cid & 3): how evenly connections use their four channels. */
  callsPerChannel: number[];
  /**
   * Milliseconds calls occupied each channel index (from the call's start to its
   * end: a server call ends when its reply is acknowledged or the next call supersedes it).
   */
  channelBusyMs: number[];
  callsCompleted: number;
  callsFailed: number;
  rttSamples: number;
  rttTotalMs: number;
  rttMinMs: number;
  rttMaxMs: number;
  /** Bugs caught while handling a packet (the call is aborted, the thread lives on). */
  internalErrors: number;
  /** Packet buffers returned to the pool through channel release lists. */
  buffersReleased: number;
  /** New calls (and first DATA of new connections) aborted SERVER_BUSY because the server is closing. */
  callsRefusedClosing: number;
  /** Channel worker threads that died after start-up and were replaced. */
  workerRestarts: number;
  /** Calls aborted RX_CALL_DEAD (-1) because the worker owning their channel died. */
  callsAbortedWorkerDied: number;
}

export function emptySnapshot(): CounterSnapshot {
  return {
    packetsRead: new Array<number>(PACKET_TYPE_COUNT).fill(0),
    packetsSent: new Array<number>(PACKET_TYPE_COUNT).fill(0),
    dataPacketsRead: 0,
    dupPacketsRead: 0,
    spuriousPacketsRead: 0,
    ackPacketsRead: 0,
    dataPacketsSent: 0,
    dataPacketsReSent: 0,
    dataPacketsPushed: 0,
    ackPacketsSent: 0,
    pingPacketsSent: 0,
    abortPacketsSent: 0,
    busyPacketsSent: 0,
    busyPacketsRead: 0,
    packetsRejected: 0,
    staleFinalAcks: 0,
    callsCompletedByNextCall: 0,
    callsStarted: 0,
    callsPerChannel: new Array<number>(CHANNELS_PER_CONNECTION).fill(0),
    channelBusyMs: new Array<number>(CHANNELS_PER_CONNECTION).fill(0),
    callsCompleted: 0,
    callsFailed: 0,
    rttSamples: 0,
    rttTotalMs: 0,
    rttMinMs: Number.POSITIVE_INFINITY,
    rttMaxMs: 0,
    internalErrors: 0,
    buffersReleased: 0,
    callsRefusedClosing: 0,
    workerRestarts: 0,
    callsAbortedWorkerDied: 0,
  };
}

/** Sums snapshots from several threads into one. */
export function sumSnapshots(snapshots: readonly CounterSnapshot[]): CounterSnapshot {
  const total = emptySnapshot();
  for (const snapshot of snapshots) {
    for (const key of Object.keys(total) as (keyof CounterSnapshot)[]) {
      const value = snapshot[key];
      if (Array.isArray(value)) {
        const sum = total[key] as number[];
        value.forEach((count, index) => (sum[index] = (sum[index] ?? 0) + count));
      } else if (key === 'rttMinMs') {
        total.rttMinMs = Math.min(total.rttMinMs, value);
      } else if (key === 'rttMaxMs') {
        total.rttMaxMs = Math.max(total.rttMaxMs, value);
      } else {
        (total[key] as number) += value;
      }
    }
  }
  return total;
}

/** Per-type arrays are indexed by type - 1, as rx_statistics does (types 1..13). */
export function countPacketRead(counters: CounterSnapshot, type: number): void {
  if (type >= 1 && type <= PACKET_TYPE_COUNT) counters.packetsRead[type - 1]! += 1;
}

export function countPacketSent(counters: CounterSnapshot, type: number): void {
  if (type >= 1 && type <= PACKET_TYPE_COUNT) counters.packetsSent[type - 1]! += 1;
}

export function countRtt(counters: CounterSnapshot, rttMs: number): void {
  counters.rttSamples += 1;
  counters.rttTotalMs += rttMs;
  counters.rttMinMs = Math.min(counters.rttMinMs, rttMs);
  counters.rttMaxMs = Math.max(counters.rttMaxMs, rttMs);
}
