/**
 * Channels hosted on the routing thread itself (server option `workers: 0`).
 *
 * Life: created by RxServer.prepare on the main thread, which alone touches
 * it; terminated by RxServer.close. It is one ChannelThread — the same
 * per-channel discipline as a worker: every channel of every connection
 * lives here, its packets handled in arrival order — without the two thread
 * hops a worker costs each call (routing thread -> worker -> routing thread
 * to send). The price: handlers run on the thread that reads the socket, so
 * a handler that computes for long delays every other call of the process.
 */
import { RxError } from '../errors.js';
import type { ConnectionInfo } from '../connection/connection-info.js';
import { SerialTable } from '../connection/serial-table.js';
import { CHANNELS_PER_CONNECTION } from '../protocol.js';
import { emptySnapshot } from '../metrics.js';
import { loadServiceModule } from '../service.js';
import type { PacketHeader } from '../wire/codec.js';
import type { ChannelHosts, HostStart, HostStats } from './channel-hosts.js';
import { ChannelThread } from './channel-thread.js';

const ALL_CHANNELS = Array.from({ length: CHANNELS_PER_CONNECTION }, (_, index) => index);

export class InlineChannelHost implements ChannelHosts {
  readonly size = 1;
  readonly workerThreads = 0;
  readonly serviceIds: readonly number[];
  /** Stays empty: there is no worker to lose (the thread's own counters come with stats()). */
  readonly counters = emptySnapshot();
  private readonly thread: ChannelThread;

  private constructor(thread: ChannelThread, serviceIds: readonly number[]) {
    this.thread = thread;
    this.serviceIds = serviceIds;
  }

  /**
   * `send` gets a packet the host may reuse once `send` returns when
   * `sendCopies` (the native transport copies it into its send ring at once);
   * otherwise pooled buffers are copied first, since node:dgram reads the
   * bytes on a later tick.
   */
  static async start(start: HostStart, send: (connectionId: number, packet: Uint8Array) => void, sendCopies: boolean): Promise<InlineChannelHost> {
    const services = await loadServiceModule(start.serviceModule);
    const thread = new ChannelThread({
      options: start.options,
      serials: new SerialTable(start.serials),
      poolBuffers: start.poolBuffers,
      services,
      transmit: (connection: ConnectionInfo, packet: Uint8Array) => send(connection.id, sendCopies ? packet : packet.slice()),
    });
    return new InlineChannelHost(thread, services.map((service) => service.serviceId));
  }

  open(connection: ConnectionInfo): void {
    this.thread.open(connection, ALL_CHANNELS);
  }

  close(connectionId: number, reason: string): void {
    this.thread.close(connectionId, new RxError('ERR_RX_CLOSED', reason));
  }

  deliver(connection: ConnectionInfo, channel: number, datagram: Uint8Array, header: PacketHeader): void {
    this.thread.deliver(connection.id, channel, datagram, header);
  }

  stats(): Promise<HostStats[]> {
    return Promise.resolve([this.thread.hostStats()]);
  }

  refuseNewCalls(): void {
    this.thread.refuseNewCalls();
  }

  terminate(): Promise<void> {
    // Fails the calls still running, as terminating a worker would end them.
    for (const connectionId of this.thread.connectionIds()) this.close(connectionId, 'server closed');
    return Promise.resolve();
  }
}
