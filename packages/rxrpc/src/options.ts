/**
 * Options -> filled options -> defaults, in one place. Every field is
 * validated with a message naming it (RxError 'ERR_RX_OPTION').
 */
import type { DatagramTransportKind } from './endpoint/datagram-transport.js';
import { RxError } from './errors.js';
import { MAX_SOFT_ACKS } from './protocol.js';

export interface CallTimingOptions {
  /** Delay before an unrequested ACK is sent, so a reply can carry the acknowledgement instead. */
  ackDelayMs?: number;
  /**
   * Client: how long the final ACK of a completed call waits on its channel. The next call's first
   * DATA on that channel acknowledges the whole reply (the server completes the old call on it), so
   * back-to-back calls send no final ACK at all (Linux AF_RXRPC defers it the same way). 0 sends it
   * at once, as OpenAFS's rx client does.
   */
  finalAckDelayMs?: number;
  /**
   * Lower bound of the retransmission timeout. Loopback RTTs are far below it, but a receiving
   * thread descheduled on a loaded host answers late: each spurious timeout collapses cwnd to 1
   * (OpenAFS adds 200 ms to its RTO for the same reason; TCP's minimum is 200 ms too).
   */
  minRetransmitTimeoutMs?: number;
  /** Retransmission timeout before the first RTT sample. */
  initialRetransmitTimeoutMs?: number;
  /** Upper bound of the retransmission timeout after backoff. */
  maxRetransmitTimeoutMs?: number;
  /** A waiting call pings its peer this often so both sides know it is alive. */
  keepaliveMs?: number;
  /** A call that hears nothing from its peer for this long is dead (RX_CALL_DEAD). */
  idleDeadMs?: number;
  /** A call that lasts longer than this is aborted (RX_CALL_TIMEOUT); 0 disables. */
  hardDeadMs?: number;
}

export interface CallWindowOptions {
  /** Packets we accept ahead of the application's reads (advertised as rwind). */
  receiveWindow?: number;
  /** Packets a call may have queued for sending; writers wait for room. */
  sendQueuePackets?: number;
  /** Congestion window at the start of a call (slow start grows it). */
  initialCongestionWindow?: number;
  /** Soft-ACK after this many unacknowledged DATA packets instead of waiting ackDelayMs. */
  ackEveryPackets?: number;
}

export type CallOptions = CallTimingOptions & CallWindowOptions;
export type FilledCallOptions = Required<CallOptions>;

export const kDefaultCallOptions: FilledCallOptions = Object.freeze({
  ackDelayMs: 5,
  finalAckDelayMs: 5,
  minRetransmitTimeoutMs: 200,
  initialRetransmitTimeoutMs: 500,
  maxRetransmitTimeoutMs: 8_000,
  keepaliveMs: 5_000,
  idleDeadMs: 60_000,
  hardDeadMs: 0,
  receiveWindow: 64,
  sendQueuePackets: 256,
  initialCongestionWindow: 8,
  ackEveryPackets: 4,
});

export function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RxError('ERR_RX_OPTION', `option ${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

export function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new RxError('ERR_RX_OPTION', `option ${name} must be a boolean, got ${String(value)}`);
  return value;
}

export function checkTransport(name: string, value: unknown): DatagramTransportKind {
  if (value !== 'native' && value !== 'dgram') throw new RxError('ERR_RX_OPTION', `option ${name} must be 'native' or 'dgram', got ${String(value)}`);
  return value;
}

export function fillCallOptions(options: CallOptions = {}): FilledCallOptions {
  const merged = { ...kDefaultCallOptions, ...stripUndefined(options) };
  checkInteger('ackDelayMs', merged.ackDelayMs, 0, 10_000);
  checkInteger('finalAckDelayMs', merged.finalAckDelayMs, 0, 10_000);
  checkInteger('minRetransmitTimeoutMs', merged.minRetransmitTimeoutMs, 1, 60_000);
  checkInteger('initialRetransmitTimeoutMs', merged.initialRetransmitTimeoutMs, 1, 60_000);
  checkInteger('maxRetransmitTimeoutMs', merged.maxRetransmitTimeoutMs, merged.minRetransmitTimeoutMs, 600_000);
  checkInteger('keepaliveMs', merged.keepaliveMs, 1, 3_600_000);
  checkInteger('idleDeadMs', merged.idleDeadMs, 1, 3_600_000);
  checkInteger('hardDeadMs', merged.hardDeadMs, 0, 86_400_000);
  checkInteger('receiveWindow', merged.receiveWindow, 1, MAX_SOFT_ACKS);
  checkInteger('sendQueuePackets', merged.sendQueuePackets, 1, 65_536);
  checkInteger('initialCongestionWindow', merged.initialCongestionWindow, 1, MAX_SOFT_ACKS);
  checkInteger('ackEveryPackets', merged.ackEveryPackets, 1, MAX_SOFT_ACKS);
  return Object.freeze(merged);
}

export function stripUndefined<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}

