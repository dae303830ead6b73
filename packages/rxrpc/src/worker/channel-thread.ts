/**
 * The channel host of one thread: the connection views (and so the
 * channels) this thread owns, its buffer pool, its counters, and — on a
 * server — the service handlers its calls run.
 *
 * Life: one per channel worker (created at worker start), or one on the main
 * thread for a client. Everything in it is touched only by its own thread;
 * the main thread reaches it only through messages (see worker/messages.ts)
 * or, for the inline client host, direct calls on the main thread.
 */
import { CallStream } from '../call/call-stream.js';
import type { Call } from '../call/call.js';
import { BufferPool } from '../channel/buffer-pool.js';
import type { Channel } from '../channel/channel.js';
import { TimerWheel } from '../channel/timer-wheel.js';
import type { ConnectionInfo } from '../connection/connection-info.js';
import { ConnectionView } from '../connection/connection-view.js';
import type { SerialTable } from '../connection/serial-table.js';
import { RxError } from '../errors.js';
import { emptySnapshot, type CounterSnapshot } from '../metrics.js';
import type { FilledCallOptions } from '../options.js';
import { RxErrorCode } from '../protocol.js';
import type { RxService, ServerCallInfo } from '../service.js';
import { decodeHeader, type PacketHeader } from '../wire/codec.js';
import type { HostStats } from './channel-hosts.js';

export interface ChannelThreadOptions {
  options: FilledCallOptions;
  serials: SerialTable;
  poolBuffers: number;
  services: readonly RxService[];
  transmit(connection: ConnectionInfo, packet: Uint8Array): void;
  /** Client side: a call on this channel ended, the channel is free. */
  onCallEnded?: (call: Call, view: ConnectionView, channel: Channel) => void;
}

/** The handler returned without ending its reply (a handler may leave an empty reply to us). */
function replyUnfinished(stream: CallStream): boolean {
  const { call } = stream;
  return call.phase !== 'complete' && call.phase !== 'failed' && !call.canBeSuperseded();
}

/** A handler's error ABORTs its call: with the error's abortCode if it carries one. */
function abortForError(stream: CallStream, error: unknown): void {
  const code = error instanceof RxError && error.abortCode !== undefined ? error.abortCode : RxErrorCode.USER_ABORT;
  stream.abort(code, error instanceof Error ? error.message : String(error));
}

export class ChannelThread {
  readonly options: FilledCallOptions;
  readonly counters: CounterSnapshot = emptySnapshot();
  readonly pool: BufferPool;
  readonly serials: SerialTable;
  /** Every call of this thread keeps its deadlines here. */
  readonly timers = new TimerWheel();
  private readonly connections = new Map<number, ConnectionView>();
  private readonly services = new Map<number, RxService>();
  private readonly config: ChannelThreadOptions;
  /** Server calls whose handler is running; a gauge for metrics. */
  handlersRunning = 0;
  /** Set once the server drains: new calls are aborted SERVER_BUSY (the client may retry elsewhere). */
  private refusingNewCalls = false;

  constructor(config: ChannelThreadOptions) {
    this.config = config;
    this.options = config.options;
    this.serials = config.serials;
    this.pool = new BufferPool(config.poolBuffers);
    for (const service of config.services) this.services.set(service.serviceId, service);
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  connectionIds(): number[] {
    return [...this.connections.keys()];
  }

  open(info: ConnectionInfo, channels: readonly number[]): ConnectionView {
    const existing = this.connections.get(info.id);
    if (existing !== undefined) return existing;
    const view = new ConnectionView(this, info, channels);
    this.connections.set(info.id, view);
    return view;
  }

  close(connectionId: number, error: RxError): void {
    const view = this.connections.get(connectionId);
    if (view === undefined) return;
    this.connections.delete(connectionId);
    view.close(error);
  }

  /**
   * One datagram for one of our channels, in arrival order. Bad packets are
   * counted and dropped. `decoded` is its header when the caller already read it.
   */
  deliver(connectionId: number, channelIndex: number, datagram: Uint8Array, decoded?: PacketHeader): void {
    const channel = this.connections.get(connectionId)?.channel(channelIndex);
    if (channel === undefined) {
      this.counters.packetsRejected += 1;
      return;
    }
    try {
      const header = decoded ?? decodeHeader(datagram);
      channel.receive(header, datagram);
    } catch (error) {
      if (error instanceof RxError) {
        this.counters.packetsRejected += 1;
        return;
      }
      // A bug reached by a peer's packet must not take the thread (and every channel on it) down.
      this.counters.internalErrors += 1;
      if (this.counters.internalErrors === 1) process.emitWarning(`rxrpc: internal error handling a packet: ${String(error)}`);
      channel.call?.fail(new RxError('ERR_RX_CALL_ABORTED', `internal error: ${String(error)}`, RxErrorCode.PROTOCOL_ERROR));
    }
  }

  transmit(connection: ConnectionInfo, packet: Uint8Array): void {
    this.config.transmit(connection, packet);
  }

  refuseNewCalls(): void {
    this.refusingNewCalls = true;
  }

  callStarted(call: Call, view: ConnectionView, _channel: Channel): void {
    const service = this.services.get(view.info.serviceId);
    const stream = new CallStream(call);
    if (this.refusingNewCalls) {
      this.counters.callsRefusedClosing += 1;
      stream.abort(RxErrorCode.SERVER_BUSY, 'server is closing');
      return;
    }
    if (service === undefined) {
      stream.abort(RxErrorCode.INVALID_OPERATION, `no service ${view.info.serviceId}`);
      return;
    }
    const info: ServerCallInfo = {
      serviceId: view.info.serviceId,
      peerAddress: view.info.peerAddress,
      peerPort: view.info.peerPort,
      epoch: view.info.epoch,
      cid: view.info.cid,
      callNumber: call.callNumber,
    };
    this.runHandler(service, stream, info);
  }

  /**
   * Never throws, and what it leaves running never rejects: what the handler
   * throws aborts its call. A handler that finished its call before returning
   * costs no promise here either.
   */
  private runHandler(service: RxService, stream: CallStream, info: ServerCallInfo): void {
    this.handlersRunning += 1;
    let running: Promise<void> | void;
    try {
      running = service.handle(stream, info);
    } catch (error) {
      abortForError(stream, error);
      this.handlersRunning -= 1;
      return;
    }
    if (running === undefined && !replyUnfinished(stream)) {
      this.handlersRunning -= 1;
      return;
    }
    void this.settleHandler(stream, running);
  }

  private async settleHandler(stream: CallStream, running: Promise<void> | void): Promise<void> {
    try {
      await running;
      if (replyUnfinished(stream)) await stream.end();
    } catch (error) {
      abortForError(stream, error);
    } finally {
      this.handlersRunning -= 1;
    }
  }

  callEnded(call: Call, view: ConnectionView, channel: Channel): void {
    this.config.onCallEnded?.(call, view, channel);
  }

  /** Channels of this thread with a call in progress (a gauge). */
  activeCalls(): number {
    let active = 0;
    for (const view of this.connections.values()) for (const channel of view.channels) if (channel?.call !== undefined) active += 1;
    return active;
  }

  snapshot(): CounterSnapshot {
    return structuredClone(this.counters);
  }

  hostStats(): HostStats {
    return {
      counters: this.snapshot(),
      connections: this.connectionCount,
      handlersRunning: this.handlersRunning,
      activeCalls: this.activeCalls(),
      poolAvailable: this.pool.available,
    };
  }
}
