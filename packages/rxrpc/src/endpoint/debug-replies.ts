/**
 * Bodies of our answers to VERSION and DEBUG packets (what `rxdebug` asks).
 * Pure functions; the endpoint sends them back with the request's header,
 * CLIENT_INITIATED cleared.
 */
import type { CounterSnapshot } from '../metrics.js';
import {
  DEBUG_BAD_TYPE,
  DEBUG_CONN_CID_OFFSET,
  DEBUG_CONN_SIZE,
  DEBUG_END_MARKER,
  DEBUG_IN_SIZE,
  DEBUG_PEER_SIZE,
  DEBUG_STATS_OFFSET,
  DEBUG_STATS_SIZE,
  DEBUG_VERSION,
  DebugRequest,
  RX_STATISTICS_FIELDS,
  RX_STATISTICS_SIZE,
  VERSION_REPLY_SIZE,
} from '../protocol.js';
import { RxError } from '../errors.js';

export const VERSION_STRING = 'roce-rpc rxrpc 0.1.0 (null security)';

export function versionReply(): Uint8Array {
  const body = new Uint8Array(VERSION_REPLY_SIZE);
  body.set(new TextEncoder().encode(VERSION_STRING).subarray(0, VERSION_REPLY_SIZE - 1));
  return body;
}

export interface DebugState {
  counters: CounterSnapshot;
  callsExecuted: number;
  idleThreads: number;
  waitingCalls: number;
  packetsAllocated: number;
  packetsFree: number;
  serverConnections: number;
  clientConnections: number;
}

export function decodeDebugRequest(body: Uint8Array): { type: number; index: number } {
  if (body.byteLength < DEBUG_IN_SIZE) throw new RxError('ERR_RX_SHORT_PACKET', `DEBUG body of ${body.byteLength} bytes is shorter than ${DEBUG_IN_SIZE}`);
  const view = new DataView(body.buffer, body.byteOffset, DEBUG_IN_SIZE);
  return { type: view.getInt32(0), index: view.getInt32(4) };
}

function debugStats(state: DebugState): Uint8Array {
  const body = new Uint8Array(DEBUG_STATS_SIZE);
  const view = new DataView(body.buffer);
  view.setInt32(DEBUG_STATS_OFFSET.nFreePackets, state.packetsFree);
  view.setInt32(DEBUG_STATS_OFFSET.packetReclaims, 0);
  view.setInt32(DEBUG_STATS_OFFSET.callsExecuted, state.callsExecuted);
  view.setUint8(DEBUG_STATS_OFFSET.version, DEBUG_VERSION);
  view.setInt32(DEBUG_STATS_OFFSET.nWaiting, state.waitingCalls);
  view.setInt32(DEBUG_STATS_OFFSET.idleThreads, state.idleThreads);
  view.setInt32(DEBUG_STATS_OFFSET.nWaited, 0);
  view.setInt32(DEBUG_STATS_OFFSET.nPackets, state.packetsAllocated);
  return body;
}

function clamp32(value: number): number {
  return Number.isFinite(value) ? Math.min(Math.max(Math.trunc(value), -0x80000000), 0x7fffffff) : 0;
}

/** rx_statistics from our counters; RTTs as struct clock {seconds, microseconds}. */
function rxStatistics(state: DebugState): Uint8Array {
  const body = new Uint8Array(RX_STATISTICS_SIZE);
  const view = new DataView(body.buffer);
  const c = state.counters;
  const clock = (ms: number): number[] => [Math.floor(ms / 1000), Math.round((ms % 1000) * 1000)];
  const values: Partial<Record<string, number[]>> = {
    packetRequests: [c.dataPacketsSent + c.ackPacketsSent],
    bogusPacketOnRead: [c.packetsRejected],
    packetsRead: c.packetsRead,
    dataPacketsRead: [c.dataPacketsRead],
    ackPacketsRead: [c.ackPacketsRead],
    dupPacketsRead: [c.dupPacketsRead],
    spuriousPacketsRead: [c.spuriousPacketsRead],
    packetsSent: c.packetsSent,
    ackPacketsSent: [c.ackPacketsSent],
    pingPacketsSent: [c.pingPacketsSent],
    abortPacketsSent: [c.abortPacketsSent],
    busyPacketsSent: [c.busyPacketsSent],
    dataPacketsSent: [c.dataPacketsSent],
    dataPacketsReSent: [c.dataPacketsReSent],
    dataPacketsPushed: [c.dataPacketsPushed],
    totalRtt: clock(c.rttTotalMs),
    minRtt: clock(c.rttSamples > 0 ? c.rttMinMs : 0),
    maxRtt: clock(c.rttMaxMs),
    nRttSamples: [c.rttSamples],
    nServerConns: [state.serverConnections],
    nClientConns: [state.clientConnections],
    nCallStructs: [c.callsStarted],
    nBusies: [c.busyPacketsRead],
  };
  let word = 0;
  for (const [name, words] of RX_STATISTICS_FIELDS) {
    const field = values[name] ?? [];
    for (let index = 0; index < words; index++) view.setInt32((word + index) * 4, clamp32(field[index] ?? 0));
    word += words;
  }
  return body;
}

function endMarker(size: number, offset: number): Uint8Array {
  const body = new Uint8Array(size);
  new DataView(body.buffer).setUint32(offset, DEBUG_END_MARKER);
  return body;
}

/** The reply body to a DEBUG request. */
export function debugReply(request: { type: number }, state: DebugState): Uint8Array {
  switch (request.type) {
    case DebugRequest.GETSTATS:
      return debugStats(state);
    case DebugRequest.RXSTATS:
      return rxStatistics(state);
    case DebugRequest.GETCONN:
    case DebugRequest.GETALLCONN:
      return endMarker(DEBUG_CONN_SIZE, DEBUG_CONN_CID_OFFSET);
    case DebugRequest.GETPEER:
      return endMarker(DEBUG_PEER_SIZE, 0);
    default: {
      const body = new Uint8Array(DEBUG_IN_SIZE);
      const view = new DataView(body.buffer);
      view.setInt32(0, DEBUG_BAD_TYPE);
      view.setInt32(4, DEBUG_BAD_TYPE);
      return body;
    }
  }
}
