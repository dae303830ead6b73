/**
 * A channel worker's own socket of the server's steered group: the kernel
 * queues on it every call packet of the channels this worker hosts (see
 * channel-placement.ts), so they reach the channel's thread with no hop
 * through the routing thread. Here a datagram's header is decoded, its
 * connection found by hash of {peer, epoch, cid} among the connections the
 * routing thread announced to this worker, and the datagram handed to the
 * ChannelThread in arrival order. The worker's packets leave through it too.
 *
 * A datagram of a connection this worker has not heard of yet (a new
 * connection's first DATA) is forwarded to the routing thread, which creates
 * the connection as for any datagram it reads, announces it and posts the
 * datagram back through the worker's packet batches. While a forward of a
 * connection is unanswered, that connection's later datagrams are forwarded
 * too (even once it is announced), so its channels' packets keep their
 * arrival order across the two paths; other connections are not held up.
 *
 * Life: created by the channel worker at start; `attach` gives it the socket
 * (a duplicate of the group member's descriptor, which it owns), posted by
 * the routing thread after bind and again to a replacement worker. Touched
 * only by its worker's thread; the socket's descriptor closes with its
 * handle when the worker ends.
 */
import type { ChannelRecords } from '../connection/channel-records.js';
import type { ConnectionInfo } from '../connection/connection-info.js';
import { ConnectionIndex, connectionKey } from '../connection/connection-table.js';
import { NativeDatagramSocket } from '../endpoint/native-datagram-socket.js';
import { countPacketRead, countPacketSent } from '../metrics.js';
import { CHANNEL_MASK, CID_MASK, HEADER_OFFSET } from '../protocol.js';
import { decodeHeader, type PacketHeader } from '../wire/codec.js';
import type { ChannelThread } from './channel-thread.js';
import type { HostedConnections } from './hosted-connections.js';

/**
 * Forwards awaiting the routing thread's answer: a burst of new connections
 * beyond this is dropped (counted rejected) and retransmitted by the peers.
 */
export const FORWARDS_IN_FLIGHT_MAX = 256;

export interface WorkerSocketRoutes {
  /** Hands a datagram (its own copy) to the routing thread. */
  forward(datagram: ArrayBuffer, address: string, port: number): void;
}

export class WorkerSocket {
  private socket: NativeDatagramSocket | undefined;
  /** The connections announced to this worker; bounded by the server's maxConnections. */
  private readonly connections = new ConnectionIndex<ConnectionInfo>((info) => info);
  /** The same connections' keys by id, for their close. */
  private readonly keys = new Map<number, string>();
  /** Connection keys of the unanswered forwards, oldest first (answers come in order); at most FORWARDS_IN_FLIGHT_MAX. */
  private readonly forwardedKeys: string[] = [];
  /** How many of those each key has. */
  private readonly keysInFlight = new Map<string, number>();
  private readonly thread: ChannelThread;
  private readonly hosted: HostedConnections;
  private readonly records: ChannelRecords;
  private readonly routes: WorkerSocketRoutes;

  constructor(thread: ChannelThread, hosted: HostedConnections, records: ChannelRecords, routes: WorkerSocketRoutes) {
    this.thread = thread;
    this.hosted = hosted;
    this.records = records;
    this.routes = routes;
  }

  /** Reads and sends through `fd` from now on (closing a previous socket). */
  attach(fd: number): void {
    this.socket?.close();
    this.socket = NativeDatagramSocket.adopt(fd, (datagram, address, port) => this.receive(datagram, address, port));
  }

  get attached(): boolean {
    return this.socket !== undefined;
  }

  opened(info: ConnectionInfo): void {
    const key = connectionKey(info.peerAddress, info.peerPort, info.epoch, info.cid, true);
    this.connections.set(key, info);
    this.keys.set(info.id, key);
  }

  closed(connectionId: number): void {
    const key = this.keys.get(connectionId);
    if (key === undefined) return;
    this.keys.delete(connectionId);
    this.connections.delete(key);
  }

  /** The routing thread has handled the oldest forward (and posted back its datagram, if any). */
  forwardAnswered(): void {
    const key = this.forwardedKeys.shift();
    if (key === undefined) return;
    const left = (this.keysInFlight.get(key) ?? 1) - 1;
    if (left === 0) this.keysInFlight.delete(key);
    else this.keysInFlight.set(key, left);
  }

  send(connection: ConnectionInfo, packet: Uint8Array): void {
    countPacketSent(this.thread.counters, packet[HEADER_OFFSET.type] ?? 0);
    this.socket?.send(packet, connection.peerAddress, connection.peerPort);
  }

  private receive(datagram: Uint8Array, address: string, port: number): void {
    let header: PacketHeader;
    try {
      header = decodeHeader(datagram);
    } catch {
      this.thread.counters.packetsRejected += 1;
      return;
    }
    const cid = (header.cid & CID_MASK) >>> 0;
    const connection = this.connections.lookup(address, port, header.epoch, cid, true);
    if (connection === undefined || this.keysInFlight.size > 0) {
      const key = connectionKey(address, port, header.epoch, cid, true);
      if (connection === undefined || this.keysInFlight.has(key)) return this.forward(key, datagram, address, port);
    }
    countPacketRead(this.thread.counters, header.type);
    this.records.touch(connection.serialSlot);
    const channel = header.cid & CHANNEL_MASK;
    if (!this.hosted.admit(connection, channel, header.callNumber, header.type)) return;
    this.thread.deliver(connection.id, channel, datagram, header);
  }

  private forward(key: string, datagram: Uint8Array, address: string, port: number): void {
    if (this.forwardedKeys.length >= FORWARDS_IN_FLIGHT_MAX) {
      this.thread.counters.packetsRejected += 1;
      return;
    }
    this.forwardedKeys.push(key);
    this.keysInFlight.set(key, (this.keysInFlight.get(key) ?? 0) + 1);
    // The datagram is a view of the receive ring, reused by the next batch: forward a copy.
    this.routes.forward(datagram.slice().buffer, address, port);
  }
}
