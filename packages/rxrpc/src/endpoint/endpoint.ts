/**
 * A UDP endpoint (IPv4 or IPv6): the socket, the connection table and the
 * receive path.
 *
 * Life: created by an RxServer or RxClient on the main thread, which alone
 * touches it; closed by its owner. The receive path only parses the header,
 * answers endpoint-level packets (VERSION, DEBUG), handles connection-level
 * ones (call number 0: connection ABORT, connection ping), finds or creates
 * the connection and hands the datagram to its channel's thread via the
 * owner's `deliver`. It never runs call logic.
 */
import { RxError } from '../errors.js';
import { countPacketRead, countPacketSent, emptySnapshot, type CounterSnapshot } from '../metrics.js';
import {
  AckReason,
  CHANNEL_MASK,
  CID_MASK,
  MAX_SOFT_ACKS,
  HEADER_SIZE,
  HEADER_OFFSET,
  PacketFlag,
  PacketType,
  RxErrorCode,
} from '../protocol.js';
import { decodeAbortCode, decodeAck, decodeHeader, encodeAbortBody, encodeAckBody, encodePacket, localAckTrailer, type PacketHeader } from '../wire/codec.js';
import { ConnectionTable, connectionKey, type Connection } from '../connection/connection-table.js';
import type { ChannelRecords } from '../connection/channel-records.js';
import type { SerialTable } from '../connection/serial-table.js';
import { debugReply, decodeDebugRequest, versionReply, type DebugState } from './debug-replies.js';
import { createTransport, type DatagramTransport, type DatagramTransportKind } from './datagram-transport.js';

export interface EndpointOptions {
  address: string;
  port: number;
  maxConnections: number;
  /** Server connections silent this long are closed; 0 disables reaping (clients manage their own). */
  connectionIdleMs: number;
  /** SO_REUSEPORT: several sockets (processes) bind one port; Linux spreads peers by 4-tuple hash. */
  reusePort: boolean;
  /** Bind this process's own socket even under node:cluster (which otherwise shares the primary's). */
  exclusive: boolean;
  transport: DatagramTransportKind;
  /** Native, without reusePort: bind a steered group (see TransportBinding.steering). */
  steering?: { program: Uint32Array; members: number };
}

/** Where a datagram came from: its sender's address and port. */
interface Remote {
  address: string;
  port: number;
}

export interface EndpointOwner {
  readonly isServer: boolean;
  /** Server: a first DATA for an unknown connection. Returns an abort code to refuse it. */
  admit(header: PacketHeader): number | undefined;
  opened(connection: Connection): void;
  /**
   * `datagram` is lent for this call only (the native transport's ring slot is
   * read again by the next batch): the owner copies what it keeps — the worker
   * pool into its cross-thread batch, a channel's Receiver the DATA it holds
   * (views of a larger buffer are copied there). `header` is its decoded header.
   */
  deliver(connection: Connection, channel: number, datagram: Uint8Array, header: PacketHeader): void;
  /** The connection left the table; `abortCode` when the peer aborted it. */
  closed(connection: Connection, reason: string, abortCode?: number): void;
  debugState(): Promise<DebugState>;
}

export class Endpoint {
  private readonly transport: DatagramTransport;
  readonly connections: ConnectionTable;
  readonly counters: CounterSnapshot = emptySnapshot();
  private readonly owner: EndpointOwner;
  private readonly options: EndpointOptions;
  private readonly serials: SerialTable;
  /** Server with channel workers: where workers that read their own sockets mark connections active. */
  private readonly records: ChannelRecords | undefined;
  private reaper: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(owner: EndpointOwner, options: EndpointOptions, serials: SerialTable, records?: ChannelRecords) {
    this.owner = owner;
    this.options = options;
    this.serials = serials;
    this.records = records;
    this.connections = new ConnectionTable(options.maxConnections, serials);
    // The native transport lends its ring slot for the call only; routing keeps nothing of it.
    this.transport = createTransport(options.transport, options.address, (datagram, address, port) => this.receive(datagram, { address, port }));
  }

  async listen(): Promise<{ address: string; port: number }> {
    const bound = await this.transport.bind(this.options);
    if (this.options.connectionIdleMs > 0) {
      this.reaper = setInterval(() => this.reapIdle(), Math.max(100, this.options.connectionIdleMs / 4));
      this.reaper.unref();
    }
    return bound;
  }

  close(): Promise<void> {
    this.closed = true;
    if (this.reaper !== undefined) clearInterval(this.reaper);
    for (const connection of [...this.connections.all()]) this.closeConnection(connection, 'endpoint closed');
    return this.transport.close();
  }

  send(packet: Uint8Array, address: string, port: number): void {
    // Calls may still time out and send after close(): there is nowhere to send to.
    if (this.closed) return;
    countPacketSent(this.counters, packet[HEADER_OFFSET.type] ?? 0);
    this.transport.send(packet, address, port);
  }

  get localPort(): number {
    return this.transport.localPort;
  }

  /** Bound as a steered group: channel workers read their channels' packets from its members. */
  get steered(): boolean {
    return this.transport.steered;
  }

  /** A descriptor of the bound native socket (member 0) or a steered group's member for a channel worker; undefined for node:dgram or once closed. */
  duplicateDescriptor(member: number): number | undefined {
    return this.closed ? undefined : this.transport.duplicateDescriptor(member);
  }

  /** A datagram a channel worker read from its steered socket and could not place: routed as if read here. */
  routeForwarded(datagram: Uint8Array, address: string, port: number): void {
    if (!this.closed) this.receive(datagram, { address, port });
  }

  sendTo(connection: Connection, packet: Uint8Array): void {
    this.send(packet, connection.info.peerAddress, connection.info.peerPort);
  }

  closeConnection(connection: Connection, reason: string, abortCode?: number): void {
    this.connections.remove(connection);
    this.owner.closed(connection, reason, abortCode);
  }

  private reapIdle(): void {
    const now = performance.now();
    // Packets channel workers read themselves count as activity from the tick that sees them.
    if (this.records !== undefined) for (const connection of this.connections.all()) if (this.records.takeActivity(connection.info.serialSlot)) connection.lastActivityMs = now;
    const cutoff = now - this.options.connectionIdleMs;
    for (const connection of this.connections.idleSince(cutoff)) this.closeConnection(connection, 'idle');
  }

  private receive(message: Uint8Array, remote: Remote): void {
    let header: PacketHeader;
    try {
      header = decodeHeader(message);
    } catch {
      this.counters.packetsRejected += 1;
      return;
    }
    countPacketRead(this.counters, header.type);
    switch (header.type) {
      case PacketType.VERSION:
        return this.answerVersion(header, remote);
      case PacketType.DEBUG:
        return void this.answerDebug(header, message.subarray(HEADER_SIZE), remote);
      case PacketType.DATA:
      case PacketType.ACK:
      case PacketType.BUSY:
      case PacketType.ABORT:
      case PacketType.ACKALL:
        return this.route(header, message, remote);
      default:
        // CHALLENGE/RESPONSE need a security class we do not run; PARAMS is obsolete.
        this.counters.packetsRejected += 1;
    }
  }

  private route(header: PacketHeader, message: Uint8Array, remote: Remote): void {
    const fromClient = (header.flags & PacketFlag.CLIENT_INITIATED) !== 0;
    if (fromClient !== this.owner.isServer) {
      this.counters.packetsRejected += 1;
      return;
    }
    const cid = (header.cid & CID_MASK) >>> 0;
    const connection =
      this.connections.lookup(remote.address, remote.port, header.epoch, cid, fromClient) ??
      this.accept(connectionKey(remote.address, remote.port, header.epoch, cid, fromClient), header, remote);
    if (connection === undefined) return;
    connection.lastActivityMs = performance.now();
    if (header.callNumber === 0) return this.connectionPacket(connection, header, message.subarray(HEADER_SIZE));
    this.owner.deliver(connection, header.cid & CHANNEL_MASK, message, header);
  }

  private accept(key: string, header: PacketHeader, remote: Remote): Connection | undefined {
    if (!this.owner.isServer || header.type !== PacketType.DATA || header.callNumber === 0) {
      this.counters.packetsRejected += 1;
      return undefined;
    }
    const refusal = this.owner.admit(header);
    if (refusal !== undefined) {
      this.sendConnectionAbort(header, remote, refusal);
      return undefined;
    }
    const connection = this.connections.add(
      key,
      {
        epoch: header.epoch,
        cid: (header.cid & CID_MASK) >>> 0,
        serviceId: header.serviceId,
        securityIndex: header.securityIndex,
        isClient: false,
        peerAddress: remote.address,
        peerPort: remote.port,
      },
      performance.now(),
    );
    if (connection === undefined) {
      // Table full: drop; the client retransmits and may find room after reaping.
      this.counters.packetsRejected += 1;
      return undefined;
    }
    this.owner.opened(connection);
    return connection;
  }

  /** Call number 0: packets about the whole connection. */
  private connectionPacket(connection: Connection, header: PacketHeader, body: Uint8Array): void {
    if (header.type === PacketType.ABORT) {
      let code: number = RxErrorCode.PROTOCOL_ERROR;
      try {
        code = decodeAbortCode(body);
      } catch {
        // A short connection ABORT still ends the connection; its code is unknown.
      }
      return this.closeConnection(connection, `connection aborted by peer with code ${code}`, code);
    }
    if (header.type === PacketType.ACK && (header.flags & PacketFlag.REQUEST_ACK) !== 0) {
      try {
        if (decodeAck(body).reason !== AckReason.PING) return;
      } catch {
        this.counters.packetsRejected += 1;
        return;
      }
      const reply = encodeAckBody({
        bufferSpace: 0,
        maxSkew: 0,
        firstPacket: 0,
        previousPacket: 0,
        serial: header.serial,
        reason: AckReason.PING_RESPONSE,
        acks: new Uint8Array(0),
        trailer: localAckTrailer(MAX_SOFT_ACKS),
      });
      this.sendTo(connection, encodePacket(this.replyHeader(header, this.serials.next(connection.info.serialSlot)), reply));
      return;
    }
    this.counters.packetsRejected += 1;
  }

  private replyHeader(request: PacketHeader, serial: number): PacketHeader {
    const flipped = this.owner.isServer ? request.flags & ~PacketFlag.CLIENT_INITIATED : request.flags | PacketFlag.CLIENT_INITIATED;
    return { ...request, serial, flags: flipped & ~PacketFlag.REQUEST_ACK, type: PacketType.ACK };
  }

  private sendConnectionAbort(header: PacketHeader, remote: Remote, code: number): void {
    const abort: PacketHeader = { ...header, callNumber: 0, seq: 0, serial: 1, type: PacketType.ABORT, flags: 0 };
    this.send(encodePacket(abort, encodeAbortBody(code)), remote.address, remote.port);
  }

  /** VERSION and DEBUG replies echo the request header with CLIENT_INITIATED cleared. */
  private debugHeader(request: PacketHeader): PacketHeader {
    return { ...request, flags: request.flags & ~PacketFlag.CLIENT_INITIATED };
  }

  private answerVersion(header: PacketHeader, remote: Remote): void {
    if ((header.flags & PacketFlag.CLIENT_INITIATED) === 0) return;
    this.send(encodePacket(this.debugHeader(header), versionReply()), remote.address, remote.port);
  }

  private async answerDebug(header: PacketHeader, body: Uint8Array, remote: Remote): Promise<void> {
    if ((header.flags & PacketFlag.CLIENT_INITIATED) === 0) return;
    let request: { type: number; index: number };
    try {
      request = decodeDebugRequest(body);
    } catch (error) {
      if (!(error instanceof RxError)) throw error;
      this.counters.packetsRejected += 1;
      return;
    }
    const state = await this.owner.debugState();
    this.send(encodePacket(this.debugHeader(header), debugReply(request, state)), remote.address, remote.port);
  }
}
