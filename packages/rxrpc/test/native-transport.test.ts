/**
 * The two datagram transports: the native batched socket (the server's
 * default) and node:dgram serve the same calls; a native-transport client
 * talks to both; datagrams larger than a native ring slot are rejected and
 * counted, never crash; IPv6 peer addresses are reported in RFC 5952 text;
 * channel workers read and send through descriptors of their own sockets of
 * the port that close with them.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { RxClient, RxServer, type RxConnectionInfo } from '../dist/index.js';
import { BENCH_PACKAGE } from '../dist/generated/bench.js';
import { formatIpv6 } from '../dist/endpoint/native-datagram-socket.js';
import { RawPeer } from './helpers/raw-peer.js';

const serviceModule = new URL('../dist/bench/bench-service.js', import.meta.url);
const [Null, Echo] = BENCH_PACKAGE.procedures;

/** The inodes of the IPv4 UDP sockets bound to `port`, from /proc/net/udp. */
function udpSocketInodes(port: number): string[] {
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const lines = readFileSync('/proc/net/udp', 'utf8').split('\n').filter((row) => row.trim().split(/\s+/)[1]?.endsWith(suffix));
  return lines.map((line) => line.trim().split(/\s+/)[9]!);
}

/** How many of this process's descriptors refer to socket `inode`. */
function descriptorsOf(inode: string): number {
  let count = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === `socket:[${inode}]`) count += 1;
    } catch {
      // Closed between the listing and the readlink.
    }
  }
  return count;
}

describe('datagram transports', () => {
  for (const serverTransport of ['native', 'dgram'] as const) {
    for (const clientTransport of ['native', 'dgram'] as const) {
      it(`a ${clientTransport} client calls a ${serverTransport} server (Null, 64 KiB Echo) and the peer is reported as the client's port`, async () => {
        const server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 0, transport: serverTransport });
        const client = await RxClient.open({ transport: clientTransport });
        const peers: RxConnectionInfo[] = [];
        server.onConnection((info) => void peers.push(info));
        try {
          const connection = client.connect('127.0.0.1', server.port, 42);
          for (let index = 0; index < 20; index++) await connection.invoke(Null!, {});
          const payload = new Uint8Array(64 * 1024).map((_, index) => index * 7);
          const reply = (await connection.invoke(Echo!, { request: payload })) as { reply: Uint8Array };
          expect(Buffer.from(reply.reply).equals(Buffer.from(payload))).toBe(true);
          expect(peers.map((peer) => [peer.peerAddress, peer.peerPort])).toEqual([['127.0.0.1', client.localPort]]);
          expect((await server.stats()).counters.callsFailed).toBe(0);
        } finally {
          await client.close();
          await server.close();
        }
      });
    }
  }

  it('channel workers each read and send through a socket of the port of their own, all closed with the server', async () => {
    const workers = 2;
    const server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers });
    const inodes = udpSocketInodes(server.port);
    const client = await RxClient.open();
    try {
      const connection = client.connect('127.0.0.1', server.port, 42);
      // Calls on all four channels: both workers reply (from the server's port, or our client would not match them).
      await Promise.all(Array.from({ length: 8 }, () => connection.invoke(Null!, {})));
      // The routing thread's socket (its descriptor alone) and one per worker (the routing thread's and the worker's).
      expect(inodes.map(descriptorsOf).sort()).toEqual([1, 2, 2]);
      expect((await server.stats()).counters.callsFailed).toBe(0);
    } finally {
      await client.close();
      await server.close();
    }
    // Gone once close() resolves (the workers' handles are finalized as they exit): the port is free for a successor.
    expect(inodes.map(descriptorsOf)).toEqual([0, 0, 0]);
    expect(udpSocketInodes(server.port)).toEqual([]);
  });

  it('with reusePort (a port shared with other processes) channel workers only send through a duplicate of the one socket', async () => {
    const workers = 2;
    const server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers, reusePort: true });
    const inodes = udpSocketInodes(server.port);
    const client = await RxClient.open();
    try {
      const connection = client.connect('127.0.0.1', server.port, 42);
      await Promise.all(Array.from({ length: 8 }, () => connection.invoke(Null!, {})));
      expect(inodes.map(descriptorsOf)).toEqual([1 + workers]);
      expect((await server.stats()).counters.callsFailed).toBe(0);
    } finally {
      await client.close();
      await server.close();
    }
    expect(inodes.map(descriptorsOf)).toEqual([0]);
  });

  it('serves IPv4 and IPv6 peers on one dual-stack native socket', async () => {
    const server = await RxServer.listen({ serviceModule, address: '::', workers: 0 });
    const peers: string[] = [];
    server.onConnection((info) => void peers.push(info.peerAddress));
    try {
      for (const [bind, host] of [['0.0.0.0', '127.0.0.1'], ['::', '::1']] as const) {
        const client = await RxClient.open({ address: bind, transport: 'native' });
        try {
          await client.connect(host, server.port, 42).invoke(Null!, {});
        } finally {
          await client.close();
        }
      }
      expect(peers).toEqual(['127.0.0.1', '::1']);
    } finally {
      await server.close();
    }
  });

  it('rejects and counts a datagram longer than a native ring slot, then keeps serving', async () => {
    const server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 0 });
    const peer = await RawPeer.open();
    const client = await RxClient.open();
    try {
      const before = (await server.stats()).counters.packetsRejected;
      peer.socket.send(new Uint8Array(20_000).fill(0xee), server.port, '127.0.0.1');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect((await server.stats()).counters.packetsRejected - before).toBe(1);
      await client.connect('127.0.0.1', server.port, 42).invoke(Null!, {});
    } finally {
      await client.close();
      await peer.close();
      await server.close();
    }
  });

  it('a native-transport client refuses a host name (it resolves none) with ERR_RX_OPTION', async () => {
    const client = await RxClient.open({ transport: 'native' });
    try {
      expect(() => client.connect('localhost', 7000, 42)).toThrow(expect.objectContaining({ code: 'ERR_RX_OPTION' }));
    } finally {
      await client.close();
    }
  });

  // v4-mapped addresses never reach the formatter: the native socket reports them as IPv4.
  it('formats IPv6 peer addresses as Node does (RFC 5952)', () => {
    for (const address of ['::1', '::', 'fe80::1', '2001:db8::1:0:0:1', '2001:db8:0:1:1:1:1:1', '1::', '2001:db8:0:0:1::1']) {
      const bytes = new Uint8Array(16);
      const canonical = new net.SocketAddress({ address, family: 'ipv6' }).address;
      const groups = canonical.includes('::') ? expandIpv6(canonical) : canonical.split(':');
      groups.forEach((group, index) => new DataView(bytes.buffer).setUint16(index * 2, parseInt(group, 16)));
      expect(formatIpv6(bytes)).toBe(canonical);
    }
  });
});

function expandIpv6(text: string): string[] {
  const [head, tail] = text.split('::') as [string, string];
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  return [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
}
