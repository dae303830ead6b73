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
import { Channel, type ChannelLink } from '../channel/channel.js';
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

/**
 * The view is its channels' link to the connection and the thread, through
 * methods of its own rather than closures per connection: the code on every
 * call's path then sees the same call targets for every connection, instead
 * of V8 dropping its optimized code when a new connection's closures appear.
 */
export class ConnectionView implements ChannelLink {
  readonly info: ConnectionInfo;
  /** Index = channel number; undefined for channels another thread owns. */
  readonly channels: (Channel | undefined)[] = new Array(CHANNELS_PER_CONNECTION).fill(undefined);
  readonly isClient: boolean;
  readonly options: FilledCallOptions;
  readonly counters: CounterSnapshot;
  readonly pool: BufferPool;
  readonly timers: TimerWheel;
  private readonly host: ConnectionViewHost;

  constructor(host: ConnectionViewHost, info: ConnectionInfo, ownedChannels: readonly number[]) {
    this.info = info;
    this.host = host;
    this.isClient = info.isClient;
    this.options = host.options;
    this.counters = host.counters;
    this.pool = host.pool;
    this.timers = host.timers;
    for (const index of ownedChannels) {
      assert.ok(index >= 0 && index < CHANNELS_PER_CONNECTION, 'channel index in range');
      this.channels[index] = new Channel(this, index);
    }
  }

  headerTemplate(channel: number): ReturnType<ChannelLink['headerTemplate']> {
    const { info } = this;
    return { epoch: info.epoch, cid: (info.cid | channel) >>> 0, userStatus: 0, securityIndex: info.securityIndex, checksum: 0, serviceId: info.serviceId };
  }

  nextSerial(): number {
    return this.host.serials.next(this.info.serialSlot);
  }

  nextSerials(count: number): number {
    return this.host.serials.next(this.info.serialSlot, count);
  }

  transmit(packet: Uint8Array): void {
    this.host.transmit(this.info, packet);
  }

  nowMs(): number {
    return performance.now();
  }

  callStarted(call: Call, channel: Channel): void {
    this.host.callStarted(call, this, channel);
  }

  callEnded(call: Call, channel: Channel): void {
    this.host.callEnded(call, this, channel);
  }

  channel(index: number): Channel | undefined {
    return this.channels[index];
  }

  close(error: RxError): void {
    for (const channel of this.channels) channel?.close(error);
  }
}
