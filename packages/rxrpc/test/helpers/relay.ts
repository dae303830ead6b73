/**
 * A loopback UDP relay between one client and one server, with a policy that
 * decides per datagram what to forward, hold, drop or duplicate. Tests use it
 * to reorder final ACKs behind the next call and to make a lossy path.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { decodeHeader, type PacketHeader } from '../../dist/index.js';

export type Direction = 'to-server' | 'to-client';
export interface RelayedPacket {
  direction: Direction;
  header: PacketHeader;
  bytes: Buffer;
}
/** Returns the packets to forward now, in order (empty = drop or hold). */
export type RelayPolicy = (packet: RelayedPacket, relay: Relay) => RelayedPacket[];

export class Relay {
  private readonly socket = dgram.createSocket('udp4');
  private clientAddress: { address: string; port: number } | undefined;
  private readonly serverPort: number;
  readonly policy: RelayPolicy;
  readonly seen: RelayedPacket[] = [];
  record = false;

  private constructor(serverPort: number, policy: RelayPolicy) {
    this.serverPort = serverPort;
    this.policy = policy;
  }

  static async start(serverPort: number, policy: RelayPolicy): Promise<Relay> {
    const relay = new Relay(serverPort, policy);
    relay.socket.on('message', (bytes, remote) => relay.onMessage(bytes, remote));
    relay.socket.bind(0, '127.0.0.1');
    await once(relay.socket, 'listening');
    return relay;
  }

  get port(): number {
    return this.socket.address().port;
  }

  private onMessage(bytes: Buffer, remote: dgram.RemoteInfo): void {
    const direction: Direction = remote.port === this.serverPort ? 'to-client' : 'to-server';
    if (direction === 'to-server') this.clientAddress = { address: remote.address, port: remote.port };
    let header: PacketHeader;
    try {
      header = decodeHeader(bytes);
    } catch {
      return;
    }
    const packet = { direction, header, bytes };
    if (this.record) this.seen.push(packet);
    for (const out of this.policy(packet, this)) this.forward(out);
  }

  private closed = false;

  forward(packet: RelayedPacket): void {
    if (this.closed) return;
    if (packet.direction === 'to-server') this.socket.send(packet.bytes, this.serverPort, '127.0.0.1');
    else if (this.clientAddress !== undefined) this.socket.send(packet.bytes, this.clientAddress.port, this.clientAddress.address);
  }

  close(): Promise<void> {
    this.closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
