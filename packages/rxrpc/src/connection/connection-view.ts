/**
 * One thread's view of a connection: the channels of it that this thread
 * owns (by the stable placement, some of the four; inline hosts own all).
 *
 * Life: created by the ChannelThread when the main thread announces the
 * connection; destroyed when the main thread closes the connection, which
 * fails any call still running. Touched only by its ChannelThread's thread.
 */
import assert from 'node:assert/strict';
import type { Call } from '../call/call.js';
import type { CounterSnapshot } from '../metrics.js';
import type { FilledCallOptions } from '../options.js';
import { CHANNELS_PER_CONNECTION } from '../protocol.js';
import type { BufferPool } from '../channel/buffer-pool.js';
import { Channel } from '../channel/channel.js';
import type { TimerWheel } from '../channel/timer-wheel.js';
import type { RxError } from '../errors.js';
import type { ConnectionInfo } from './connection-info.js';
import type { SerialTable } from './serial-table.js';

export interface ConnectionViewHost {
  readonly options: FilledCallOptions;
  readonly counters: CounterSnapshot;
  readonly pool: BufferPool;
  readonly serials: SerialTable;
  readonly timers: TimerWheel;
  transmit(connection: ConnectionInfo, packet: Uint8Array): void;
  callStarted(call: Call, view: ConnectionView, channel: Channel): void;
  callEnded(call: Call, view: ConnectionView, channel: Channel): void;
}

export class ConnectionView {
  readonly info: ConnectionInfo;
  /** Index = channel number; undefined for channels another thread owns. */
  readonly channels: (Channel | undefined)[] = new Array(CHANNELS_PER_CONNECTION).fill(undefined);

  constructor(host: ConnectionViewHost, info: ConnectionInfo, ownedChannels: readonly number[]) {
    this.info = info;
    const link = {
      isClient: info.isClient,
      options: host.options,
      counters: host.counters,
      pool: host.pool,
      timers: host.timers,
      headerTemplate: (channel: number) => ({
        epoch: info.epoch,
        cid: (info.cid | channel) >>> 0,
        userStatus: 0,
        securityIndex: info.securityIndex,
        checksum: 0,
        serviceId: info.serviceId,
      }),
      nextSerial: () => host.serials.next(info.serialSlot),
      nextSerials: (count: number) => host.serials.next(info.serialSlot, count),
      transmit: (packet: Uint8Array) => host.transmit(info, packet),
      nowMs: () => performance.now(),
      callStarted: (call: Call, channel: Channel) => host.callStarted(call, this, channel),
      callEnded: (call: Call, channel: Channel) => host.callEnded(call, this, channel),
    };
    for (const index of ownedChannels) {
      assert.ok(index >= 0 && index < CHANNELS_PER_CONNECTION, 'channel index in range');
      this.channels[index] = new Channel(link, index);
    }
  }

  channel(index: number): Channel | undefined {
    return this.channels[index];
  }

  close(error: RxError): void {
    for (const channel of this.channels) channel?.close(error);
  }
}
