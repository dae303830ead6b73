/**
 * What the server's routing thread needs from whatever hosts the channels:
 * the fixed pool of channel worker threads (worker-pool.ts) or the routing
 * thread itself (inline-host.ts). Both keep the seed's rule — each channel
 * lives on exactly one thread that handles its packets in arrival order.
 */
import type { ConnectionInfo } from '../connection/connection-info.js';
import type { CounterSnapshot } from '../metrics.js';
import type { PacketHeader } from '../wire/codec.js';

/** One channel thread's counters and gauges. */
export interface HostStats {
  counters: CounterSnapshot;
  connections: number;
  handlersRunning: number;
  activeCalls: number;
  poolAvailable: number;
}

export interface ChannelHosts {
  /** Threads hosting channels. */
  readonly size: number;
  /** Worker threads among them (0 when the routing thread hosts every channel). */
  readonly workerThreads: number;
  /** Service ids the service module declares. */
  readonly serviceIds: readonly number[];
  /** Counters the host keeps on the routing thread: worker restarts, and the counts of workers that died. */
  readonly counters: CounterSnapshot;
  open(connection: ConnectionInfo): void;
  close(connectionId: number, reason: string): void;
  /**
   * `datagram` is lent for the call (see EndpointOwner.deliver); `header` is
   * its decoded header: a host on the routing thread need not decode it again.
   */
  deliver(connection: ConnectionInfo, channel: number, datagram: Uint8Array, header: PacketHeader): void;
  /** One entry per hosting thread (a thread that does not answer in time is left out). */
  stats(): Promise<HostStats[]>;
  /** From now on new calls are aborted SERVER_BUSY; calls already running go on. */
  refuseNewCalls(): void;
  /**
   * Worker hosts, once the native socket is bound: from now on each worker
   * (and each replacement) gets a descriptor of its own from `sockets` and
   * sends its channels' packets itself — and reads them too when steered.
   */
  attachSockets?(sockets: ServerSockets): void;
  terminate(): Promise<void>;
}

/** The bound native server socket, as channel workers get it. */
export interface ServerSockets {
  /**
   * True: a steered group (channel-placement.ts) with one member per worker,
   * member 1 + k for worker k. False: workers only send, through duplicates
   * of member 0, the routing thread's socket.
   */
  steered: boolean;
  /** A new descriptor of `member`, for one worker to own; undefined once closed. */
  duplicate(member: number): number | undefined;
}

/** What a host needs to start its channel threads. */
export interface HostStart {
  serviceModule: string;
  serials: SharedArrayBuffer;
  /** The ChannelRecords' buffer (connection/channel-records.ts). */
  records: SharedArrayBuffer;
  options: import('../options.js').FilledCallOptions;
  poolBuffers: number;
}
