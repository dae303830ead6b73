/**
 * NativeDatagramSocket: a UDP socket owned by the verbs core's native code
 * (crates/verbs/src/datagram_socket.rs), read with recvmmsg and written with
 * sendmmsg. One JavaScript call per batch of received datagrams (on this
 * thread's event loop, no thread hop) and one native call per batch of sends,
 * where node:dgram costs a callback, a Buffer and an rinfo object per
 * received datagram and a SendWrap plus a sendmsg per sent one.
 *
 * Life: opened and closed by its owner (an Endpoint) on the main thread,
 * which alone touches it. A received datagram is a view into the native
 * receive ring, valid only during the `onDatagram` call that gets it: the
 * next batch overwrites the slot, so whoever keeps bytes copies them. `send`
 * copies the packet into a send slot at once; the slots go out together in a
 * microtask (after the batch being handled, if any) or as soon as they are full.
 *
 * A socket opened with `steering` is the first of a steered SO_REUSEPORT
 * group (see worker/channel-placement.ts): the kernel queues each datagram on
 * the group's socket its program picks. A channel worker reads and writes
 * its member of the group (`duplicateDescriptor(member)` on the main thread,
 * `adopt(fd, listener)` on the worker), or only sends through a duplicate of
 * this socket (`adopt(fd)`). Each thread closes only its own descriptor.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RxError } from '../errors.js';

interface NativeDatagramHandle {
  readonly memory: ArrayBuffer;
  readonly address: string;
  readonly port: number;
  readonly family: number;
  readonly receiveSlots: number;
  readonly sendSlots: number;
  readonly slotBytes: number;
  readonly metaBytes: number;
  readonly receiveDataOffset: number;
  readonly sendDataOffset: number;
  readonly receiveMetaOffset: number;
  readonly sendMetaOffset: number;
}

interface DatagramBinding {
  datagramOpen(
    address: string,
    port: number,
    reusePort: boolean,
    socketBufferBytes: number,
    onBatch: (count: number) => void,
    steeringProgram?: Uint32Array,
    steeringMembers?: number,
  ): NativeDatagramHandle;
  /** Sends slots 0..count; returns how many the kernel refused. */
  datagramSend(handle: NativeDatagramHandle, count: number): number;
  datagramClose(handle: NativeDatagramHandle): void;
  datagramParseAddress(text: string, out: Uint8Array): number;
  /** A new descriptor of the socket (member 0) or of a steered group's member, owned by the caller until adopted. */
  datagramDuplicate(handle: NativeDatagramHandle, member: number): number;
  /** Owns `fd`; read on this thread's loop when given `onBatch`, else send-only. */
  datagramAdopt(fd: number, onBatch?: (count: number) => void): NativeDatagramHandle;
}

/** Metadata words per slot (META_BYTES / 4): length, port, family | flags, scope, 4 address words. */
const META_WORDS = 8;
const META_ADDRESS_WORD = 4;
const FAMILY_MASK = 0xff;
const TRUNCATED_FLAG = 1 << 8;
/**
 * Peer address strings (received) and bytes (sent) cached by the socket: a
 * server talks to a bounded set of peers; past this many the cache is
 * simply cleared, which costs a reformat, never a wrong address.
 */
const ADDRESS_CACHE_MAX = 1024;

const ADDON_FILE = 'roce-verbs.linux-x64-gnu.node';
let binding: DatagramBinding | undefined;

/** The verbs addon (built by @roce-rpc/verbs), loaded on first use. */
function loadBinding(): DatagramBinding {
  if (binding !== undefined) return binding;
  try {
    const verbsEntry = fileURLToPath(import.meta.resolve('@roce-rpc/verbs'));
    binding = createRequire(import.meta.url)(join(dirname(verbsEntry), '..', ADDON_FILE)) as DatagramBinding;
  } catch (error) {
    throw new RxError('ERR_RX_NATIVE_UNAVAILABLE', `the native datagram transport needs the @roce-rpc/verbs addon: ${String(error)}`);
  }
  return binding;
}

export type DatagramListener = (datagram: Uint8Array, address: string, port: number) => void;

interface SendAddress {
  family: number;
  words: Uint32Array;
}

export class NativeDatagramSocket {
  readonly address: string;
  readonly port: number;
  /** Opened as the first socket of a steered group. */
  readonly steered: boolean;
  /** Datagrams the kernel refused to send (or with a non-literal address). */
  failedSends = 0;
  private readonly native: DatagramBinding;
  private readonly handle: NativeDatagramHandle;
  private readonly listener: DatagramListener;
  private readonly bytes: Uint8Array;
  private readonly words: Uint32Array;
  private readonly receivedAddresses = new Map<string | number, string>();
  private readonly sendAddresses = new Map<string, SendAddress>();
  private pendingSends = 0;
  private flushQueued = false;
  private closed = false;

  private constructor(native: DatagramBinding, open: (onBatch: (count: number) => void) => NativeDatagramHandle, listener: DatagramListener, steered = false) {
    this.native = native;
    this.steered = steered;
    this.listener = listener;
    this.handle = open((count) => this.receiveBatch(count));
    this.address = this.handle.address;
    this.port = this.handle.port;
    this.bytes = new Uint8Array(this.handle.memory);
    this.words = new Uint32Array(this.handle.memory);
  }

  /**
   * Binds `address:port` (an IP literal; '::' is dual stack). With `steering`,
   * also binds `steering.members` more sockets to the same port in one
   * SO_REUSEPORT group whose `program` picks each datagram's socket (this one
   * is 0). Throws ERR_RX_NATIVE_UNAVAILABLE without the addon.
   */
  static open(
    address: string,
    port: number,
    reusePort: boolean,
    socketBufferBytes: number,
    listener: DatagramListener,
    steering?: { program: Uint32Array; members: number },
  ): NativeDatagramSocket {
    const native = loadBinding();
    return new NativeDatagramSocket(
      native,
      (onBatch) => native.datagramOpen(address, port, reusePort, socketBufferBytes, onBatch, steering?.program, steering?.members),
      listener,
      steering !== undefined,
    );
  }

  /**
   * A socket over `fd` (from another thread's `duplicateDescriptor`), which it
   * owns and closes; it leaves from the original socket's port. With a
   * `listener` it is read on this thread's loop; without, it only sends.
   */
  static adopt(fd: number, listener?: DatagramListener): NativeDatagramSocket {
    const native = loadBinding();
    if (listener === undefined) return new NativeDatagramSocket(native, () => native.datagramAdopt(fd), () => assert.fail('a sender receives nothing'));
    return new NativeDatagramSocket(native, (onBatch) => native.datagramAdopt(fd, onBatch), listener);
  }

  /** A new descriptor of this socket (`member` 0) or of member `member` of its steered group, for one thread to adopt. */
  duplicateDescriptor(member = 0): number {
    return this.native.datagramDuplicate(this.handle, member);
  }

  /** Queues `packet` for `address` (an IP literal) and `port`; false if it cannot go. */
  send(packet: Uint8Array, address: string, port: number): boolean {
    if (this.closed) return false;
    const { slotBytes, sendSlots, sendDataOffset, sendMetaOffset } = this.handle;
    const destination = this.sendAddress(address);
    if (destination === undefined || packet.byteLength > slotBytes) {
      this.failedSends += 1;
      return false;
    }
    if (this.pendingSends === sendSlots) this.flush();
    const slot = this.pendingSends++;
    this.bytes.set(packet, sendDataOffset + slot * slotBytes);
    const meta = (sendMetaOffset >>> 2) + slot * META_WORDS;
    this.words[meta] = packet.byteLength;
    this.words[meta + 1] = port;
    this.words[meta + 2] = destination.family;
    this.words.set(destination.words, meta + META_ADDRESS_WORD);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
    return true;
  }

  /** Hands every queued datagram to the kernel now. */
  flush(): void {
    this.flushQueued = false;
    if (this.pendingSends === 0 || this.closed) return;
    const count = this.pendingSends;
    this.pendingSends = 0;
    this.failedSends += this.native.datagramSend(this.handle, count);
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.native.datagramClose(this.handle);
  }

  private receiveBatch(count: number): void {
    const { receiveDataOffset, receiveMetaOffset, slotBytes } = this.handle;
    assert.ok(count <= this.handle.receiveSlots, 'a batch fits the receive ring');
    for (let slot = 0; slot < count && !this.closed; slot++) {
      const meta = (receiveMetaOffset >>> 2) + slot * META_WORDS;
      const flags = this.words[meta + 2]!;
      const start = receiveDataOffset + slot * slotBytes;
      // A datagram longer than a slot arrived cut: it is handed on empty, which every decoder rejects (and counts).
      const length = (flags & TRUNCATED_FLAG) !== 0 ? 0 : this.words[meta]!;
      this.listener(this.bytes.subarray(start, start + length), this.receivedAddress(meta, flags & FAMILY_MASK), this.words[meta + 1]!);
    }
  }

  /** The peer address of a receive slot as text, formatted once per peer. */
  private receivedAddress(meta: number, family: number): string {
    const first = this.words[meta + META_ADDRESS_WORD]!;
    const key = family === 4 ? first : `${first}:${this.words[meta + 5]}:${this.words[meta + 6]}:${this.words[meta + 7]}`;
    let text = this.receivedAddresses.get(key);
    if (text === undefined) {
      const offset = (meta + META_ADDRESS_WORD) * 4;
      text = family === 4 ? this.bytes.subarray(offset, offset + 4).join('.') : formatIpv6(this.bytes.subarray(offset, offset + 16));
      if (this.receivedAddresses.size >= ADDRESS_CACHE_MAX) this.receivedAddresses.clear();
      this.receivedAddresses.set(key, text);
    }
    return text;
  }

  private sendAddress(address: string): SendAddress | undefined {
    let destination = this.sendAddresses.get(address);
    if (destination === undefined) {
      const bytes = new Uint8Array(16);
      const family = this.native.datagramParseAddress(address, bytes);
      if (family === 0) return undefined;
      destination = { family, words: new Uint32Array(bytes.buffer) };
      if (this.sendAddresses.size >= ADDRESS_CACHE_MAX) this.sendAddresses.clear();
      this.sendAddresses.set(address, destination);
    }
    return destination;
  }
}

/** RFC 5952 text of an IPv6 address: lower-case hex groups, the longest run of two or more zero groups as `::`. */
export function formatIpv6(bytes: Uint8Array): string {
  const groups = Array.from({ length: 8 }, (_, index) => (bytes[2 * index]! << 8) | bytes[2 * index + 1]!);
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8; ) {
    let end = start;
    while (end < 8 && groups[end] === 0) end++;
    if (end - start > bestLength) [bestStart, bestLength] = [start, end - start];
    start = end === start ? start + 1 : end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}
