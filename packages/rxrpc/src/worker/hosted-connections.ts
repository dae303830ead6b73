/**
 * What routing knows about the connections whose channels live on channel
 * workers: each connection's info, and — through the shared ChannelRecords —
 * per channel the newest call number routed to it and the call number a
 * worker's death aborted. It is what lets the pool answer for the calls of a
 * channel worker that died: the worker's own channel state is gone with it,
 * so the routing thread aborts the newest call of every channel the worker
 * owned, and whoever routes that channel's packets afterwards keeps answering
 * that call's packets with the same ABORT, so its retransmitted DATA never
 * reaches the replacement worker (the procedure never runs twice).
 *
 * Life: one per WorkerPool on the main thread (every hosted connection, added
 * when the endpoint opens a connection and removed when it closes it,
 * bounded by the endpoint's maxConnections), and one per channel worker
 * reading its own steered socket (admit only, for the packets it routes).
 */
import type { ChannelRecords } from '../connection/channel-records.js';
import { CallAdmission } from '../connection/channel-records.js';
import type { ConnectionInfo } from '../connection/connection-info.js';
import type { SerialTable } from '../connection/serial-table.js';
import type { CounterSnapshot } from '../metrics.js';
import { CHANNELS_PER_CONNECTION, PacketType, RxErrorCode } from '../protocol.js';
import { encodeAbortBody, encodePacket } from '../wire/codec.js';

/**
 * The abort code of calls whose channel worker died: RX_CALL_DEAD (-1), "the
 * call died on the server" — its procedure may have run in part, so clients
 * must not take it for BUSY (never started) and retry blindly.
 */
export const WORKER_DIED_ABORT_CODE = RxErrorCode.CALL_DEAD;

export class HostedConnections {
  private readonly connections = new Map<number, ConnectionInfo>();
  private readonly records: ChannelRecords;
  private readonly serials: SerialTable;
  private readonly counters: CounterSnapshot;
  private readonly send: (connection: ConnectionInfo, packet: Uint8Array) => void;

  constructor(records: ChannelRecords, serials: SerialTable, counters: CounterSnapshot, send: (connection: ConnectionInfo, packet: Uint8Array) => void) {
    this.records = records;
    this.serials = serials;
    this.counters = counters;
    this.send = send;
  }

  infos(): ConnectionInfo[] {
    return [...this.connections.values()];
  }

  /** A new connection: its record starts clean, before any worker hears of it. */
  add(info: ConnectionInfo): void {
    this.records.reset(info.serialSlot);
    this.connections.set(info.id, info);
  }

  get(connectionId: number): ConnectionInfo | undefined {
    return this.connections.get(connectionId);
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
  admit(info: ConnectionInfo, channel: number, callNumber: number, type: number): boolean {
    const admission = this.records.admit(info.serialSlot, channel, callNumber);
    if (admission === CallAdmission.DEAD_CALL && type !== PacketType.ABORT) this.sendAbort(info, channel, callNumber);
    return admission === CallAdmission.DELIVER;
  }

  /**
   * A worker died: aborts the newest call of every channel `isOwned` picks
   * (a client ignores an ABORT for a call it already completed, so aborting a
   * finished one is harmless). Returns the calls aborted.
   */
  abortChannels(isOwned: (connection: ConnectionInfo, channel: number) => boolean): number {
    let aborted = 0;
    for (const info of this.connections.values()) {
      for (let channel = 0; channel < CHANNELS_PER_CONNECTION; channel++) {
        if (!isOwned(info, channel)) continue;
        const callNumber = this.records.markDead(info.serialSlot, channel);
        if (callNumber === 0) continue;
        this.sendAbort(info, channel, callNumber);
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
    this.send(info, encodePacket(header, encodeAbortBody(WORKER_DIED_ABORT_CODE)));
    this.counters.abortPacketsSent += 1;
  }
}
