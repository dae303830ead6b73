/**
 * A scripted raw-UDP Rx peer: sends hand-built packets and waits for the
 * ones it expects. No Rx machinery of ours on this side.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { decodeHeader, encodePacket, PacketFlag, PacketType, type PacketHeader } from '../../dist/index.js';

export class RawPeer {
  readonly socket: dgram.Socket;
  readonly received: { header: PacketHeader; bytes: Buffer }[] = [];
  private waiters: (() => void)[] = [];
  serial = 1;

  private constructor(type: 'udp4' | 'udp6') {
    this.socket = dgram.createSocket(type);
    this.socket.on('message', (bytes) => {
      try {
        this.received.push({ header: decodeHeader(bytes), bytes });
      } catch {
        return;
      }
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static async open(type: 'udp4' | 'udp6' = 'udp4'): Promise<RawPeer> {
    const peer = new RawPeer(type);
    peer.socket.bind(0, type === 'udp4' ? '127.0.0.1' : '::1');
    await once(peer.socket, 'listening');
    return peer;
  }

  send(address: string, port: number, header: Partial<PacketHeader>, body?: Uint8Array): void {
    const full: PacketHeader = {
      epoch: 0x1234,
      cid: 0x100,
      callNumber: 1,
      seq: 1,
      serial: this.serial++,
      type: PacketType.DATA,
      flags: PacketFlag.CLIENT_INITIATED | PacketFlag.LAST_PACKET,
      userStatus: 0,
      securityIndex: 0,
      checksum: 0,
      serviceId: 42,
      ...header,
    };
    this.socket.send(encodePacket(full, body), port, address);
  }

  /** Waits until a received packet matches, or rejects after timeoutMs. */
  async expect(match: (header: PacketHeader) => boolean, timeoutMs = 2000): Promise<{ header: PacketHeader; bytes: Buffer }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.find((packet) => match(packet.header));
      if (found !== undefined) return found;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error('expected packet did not arrive');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
