/**
 * The main thread's record of the connections a WorkerPool hosts: each
 * connection's info and, per channel, the newest call number routed to it and
 * the call number a worker's death aborted. It is what lets the pool answer
 * for the calls of a channel worker that died: the worker's own channel state
 * is gone with it, so the routing thread aborts the newest call of every
 * channel the worker owned and keeps answering that call's packets with the
 * same ABORT, so its retransmitted DATA never reaches the replacement worker
 * (the procedure never runs twice).
 *
 * Life: one per WorkerPool, on the main thread only; an entry is added when
 * the endpoint opens a connection and removed when it closes it. Bounded by
 * the endpoint's maxConnections (the pool only hears of admitted connections).
 */
import type { ConnectionInfo } from '../connection/connection-info.js';
import type { SerialTable } from '../connection/serial-table.js';
import type { CounterSnapshot } from '../metrics.js';
import { CHANNELS_PER_CONNECTION, HEADER_OFFSET, HEADER_SIZE, PacketType, RxErrorCode } from '../protocol.js';
import { encodeAbortBody, encodePacket } from '../wire/codec.js';

/**
 * The abort code of calls whose channel worker died: RX_CALL_DEAD (-1), "the
 * call died on the server" — its procedure may have run in part, so clients
 * must not take it for BUSY (never started) and retry blindly.
 */
export const WORKER_DIED_ABORT_CODE = RxErrorCode.CALL_DEAD;

interface HostedConnection {
  info: ConnectionInfo;
  /** Per channel: the newest call number routed to it (0 = none yet). */
  newestCallNumbers: Uint32Array;
  /** Per channel: the call a dead worker took with it; its packets and older ones never reach the channel again. */
  deadCallNumbers: Uint32Array;
}

export class HostedConnections {
  private readonly connections = new Map<number, HostedConnection>();
  private readonly serials: SerialTable;
  private readonly counters: CounterSnapshot;
  private readonly send: (connectionId: number, packet: Uint8Array) => void;

  constructor(serials: SerialTable, counters: CounterSnapshot, send: (connectionId: number, packet: Uint8Array) => void) {
    this.serials = serials;
    this.counters = counters;
    this.send = send;
  }

  infos(): ConnectionInfo[] {
    return Array.from(this.connections.values(), (connection) => connection.info);
  }

  add(info: ConnectionInfo): void {
    this.connections.set(info.id, {
      info,
      newestCallNumbers: new Uint32Array(CHANNELS_PER_CONNECTION),
      deadCallNumbers: new Uint32Array(CHANNELS_PER_CONNECTION),
    });
  }

  remove(connectionId: number): void {
    this.connections.delete(connectionId);
  }

  /**
   * Notes a client packet on its way to its channel. Returns false when it
   * belongs to a call a dead worker took (answered with that call's ABORT
   * again) or an older one (dropped): such packets must not start a call on
   * the replacement worker.
   */
  admit(connectionId: number, channel: number, datagram: Uint8Array): boolean {
    const connection = this.connections.get(connectionId);
    if (connection === undefined || datagram.byteLength < HEADER_SIZE) return true;
    const callNumber = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength).getUint32(HEADER_OFFSET.callNumber);
    const dead = connection.deadCallNumbers[channel]!;
    if (dead !== 0 && callNumber <= dead) {
      if (callNumber === dead && datagram[HEADER_OFFSET.type] !== PacketType.ABORT) this.sendAbort(connection.info, channel, dead);
      return false;
    }
    if (callNumber > connection.newestCallNumbers[channel]!) connection.newestCallNumbers[channel] = callNumber;
    return true;
  }

  /**
   * A worker died: aborts the newest call of every channel `isOwned` picks
   * (a client ignores an ABORT for a call it already completed, so aborting a
   * finished one is harmless). Returns the calls aborted.
   */
  abortChannels(isOwned: (connectionId: number, channel: number) => boolean): number {
    let aborted = 0;
    for (const connection of this.connections.values()) {
      for (let channel = 0; channel < CHANNELS_PER_CONNECTION; channel++) {
        const callNumber = connection.newestCallNumbers[channel]!;
        if (callNumber === 0 || !isOwned(connection.info.id, channel)) continue;
        connection.deadCallNumbers[channel] = callNumber;
        this.sendAbort(connection.info, channel, callNumber);
        aborted += 1;
      }
    }
    this.counters.callsAbortedWorkerDied += aborted;
    return aborted;
  }

  private sendAbort(info: ConnectionInfo, channel: number, callNumber: number): void {
    const header = {
      epoch: info.epoch,
      cid: (info.cid | channel) >>> 0,
      callNumber,
      seq: 0,
      serial: this.serials.next(info.serialSlot),
      type: PacketType.ABORT,
      flags: 0,
      userStatus: 0,
      securityIndex: info.securityIndex,
      checksum: 0,
      serviceId: info.serviceId,
    };
    this.send(info.id, encodePacket(header, encodeAbortBody(WORKER_DIED_ABORT_CODE)));
    this.counters.abortPacketsSent += 1;
  }
}
