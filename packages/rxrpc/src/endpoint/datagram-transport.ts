/**
 * The datagram transports an Endpoint reads and writes through: node:dgram,
 * or the native batched socket of the verbs core (native-datagram-socket.ts).
 * Both deliver `(datagram, address, port)` on the main thread and send to an
 * address and port; routing and everything above it is the same.
 *
 * Life: created by the Endpoint's constructor on the main thread, bound by
 * `Endpoint.listen`, closed by `Endpoint.close`; only the main thread touches it.
 */
import dgram from 'node:dgram';
import dns from 'node:dns';
import { once } from 'node:events';
import { isIP } from 'node:net';
import { NativeDatagramSocket } from './native-datagram-socket.js';

/** Which datagram I/O an endpoint uses; see the README's *Datagram transports*. */
export type DatagramTransportKind = 'dgram' | 'native';

/**
 * Socket receive and send buffers. Linux's 208 KiB default holds about two
 * calls' windows of jumbograms (64 packets each, at skb size): four calls of
 * one connection arriving together overflowed it and every drop cost a
 * retransmission timeout. Linux caps this at net.core.rmem_max / wmem_max.
 */
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

export interface TransportBinding {
  address: string;
  port: number;
  reusePort: boolean;
  /** node:dgram only: bind this process's own socket even under node:cluster. */
  exclusive: boolean;
  /**
   * Native only, and not with reusePort: also bind `members` sockets to the
   * port in one SO_REUSEPORT group whose classic BPF `program` picks each
   * datagram's socket (0 = this one). node:dgram ignores it.
   */
  steering?: { program: Uint32Array; members: number };
}

/** `datagram` is only lent: valid during the call (the native ring reuses it). */
export type DatagramReceiver = (datagram: Uint8Array, address: string, port: number) => void;

export interface DatagramTransport {
  bind(binding: TransportBinding): Promise<{ address: string; port: number }>;
  send(packet: Uint8Array, address: string, port: number): void;
  readonly localPort: number;
  /** Bound with steering: its group has the members asked for. */
  readonly steered: boolean;
  /** A descriptor of the socket (member 0) or of a steered group's member, for a channel worker to adopt (native only; undefined otherwise). */
  duplicateDescriptor(member: number): number | undefined;
  close(): Promise<void>;
}

export function createTransport(kind: DatagramTransportKind, address: string, receive: DatagramReceiver): DatagramTransport {
  return kind === 'native' ? new NativeTransport(receive) : new DgramTransport(address, receive);
}

/**
 * dgram resolves every send's address through dns.lookup, which for an IP
 * literal still defers the send by a tick. Replies go to the address a
 * packet came from, always a literal: those are passed straight through, so
 * the send happens inside socket.send(). Names (a client's connect) still
 * go through dns.lookup.
 */
let lastLiteral = '';
let lastLiteralFamily = 0;

function lookupLiteralAtOnce(address: string, family: number | dns.LookupOneOptions, callback: (error: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  // Replies mostly go to the address of the previous one: skip isIP's regular expression for it.
  if (address === lastLiteral) return callback(null, address, lastLiteralFamily);
  const literalFamily = isIP(address);
  if (literalFamily !== 0) {
    lastLiteral = address;
    lastLiteralFamily = literalFamily;
  }
  // dgram passes the socket's family (4 or 6); the type declares dns.lookup's options.
  if (literalFamily === 0) return dns.lookup(address, typeof family === 'number' ? { family } : family, callback);
  callback(null, address, literalFamily);
}

/** node:dgram: a callback, a Buffer and an rinfo per received datagram; a SendWrap and a sendmsg per send. */
class DgramTransport implements DatagramTransport {
  private readonly address: string;
  private readonly receive: DatagramReceiver;
  private socket: dgram.Socket | undefined;

  constructor(address: string, receive: DatagramReceiver) {
    this.address = address;
    this.receive = receive;
  }

  async bind(binding: TransportBinding): Promise<{ address: string; port: number }> {
    const socket = dgram.createSocket({
      type: this.address.includes(':') ? 'udp6' : 'udp4',
      ipv6Only: false,
      reusePort: binding.reusePort,
      lookup: lookupLiteralAtOnce,
      recvBufferSize: SOCKET_BUFFER_BYTES,
      sendBufferSize: SOCKET_BUFFER_BYTES,
    });
    socket.on('message', (message, remote) => this.receive(message, remote.address, remote.port));
    // A send error (ICMP port unreachable surfacing on Linux) must not kill the process;
    // the affected calls time out or are retransmitted.
    socket.on('error', () => undefined);
    this.socket = socket;
    // Listen first: with a literal address the lookup is synchronous, so bind may emit at once.
    const listening = once(socket, 'listening');
    socket.bind({ port: binding.port, address: binding.address, exclusive: binding.exclusive });
    await listening;
    const bound = socket.address();
    return { address: bound.address, port: bound.port };
  }

  send(packet: Uint8Array, address: string, port: number): void {
    this.socket?.send(packet, port, address);
  }

  get localPort(): number {
    return this.socket?.address().port ?? 0;
  }

  readonly steered = false;

  duplicateDescriptor(): undefined {
    return undefined;
  }

  close(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    return socket === undefined ? Promise.resolve() : new Promise((resolve) => socket.close(() => resolve()));
  }
}

/** The verbs core's socket: recvmmsg/sendmmsg batches, one JavaScript call per received batch. */
class NativeTransport implements DatagramTransport {
  private readonly receive: DatagramReceiver;
  private socket: NativeDatagramSocket | undefined;
  steered = false;

  constructor(receive: DatagramReceiver) {
    this.receive = receive;
  }

  async bind(binding: TransportBinding): Promise<{ address: string; port: number }> {
    // The native socket takes literals only: a name ('localhost') is resolved once, here.
    const address = isIP(binding.address) === 0 ? (await dns.promises.lookup(binding.address)).address : binding.address;
    // A group shared with other processes (reusePort) cannot be steered: the program would pick among their sockets too.
    const steering = binding.reusePort ? undefined : binding.steering;
    const open = (steered: typeof steering): NativeDatagramSocket =>
      NativeDatagramSocket.open(address, binding.port, binding.reusePort, SOCKET_BUFFER_BYTES, this.receive, steered);
    let socket: NativeDatagramSocket;
    try {
      socket = open(steering);
    } catch (error) {
      // A kernel (or sandbox) without reuseport BPF: serve unsteered, through the routing thread.
      if (steering === undefined || !String(error).includes('SO_ATTACH_REUSEPORT_CBPF')) throw error;
      process.emitWarning(`rxrpc: kernel steering to channel workers unavailable, routing every packet on the main thread: ${String(error)}`);
      socket = open(undefined);
    }
    this.socket = socket;
    this.steered = steering !== undefined && socket.steered;
    return { address: socket.address, port: socket.port };
  }

  send(packet: Uint8Array, address: string, port: number): void {
    this.socket?.send(packet, address, port);
  }

  get localPort(): number {
    return this.socket?.port ?? 0;
  }

  duplicateDescriptor(member: number): number | undefined {
    return this.socket?.duplicateDescriptor(member);
  }

  close(): Promise<void> {
    this.socket?.close();
    this.socket = undefined;
    return Promise.resolve();
  }
}
