/**
 * Where a server connection's channels live: channel c of the connection
 * whose cid is `cid` (channel bits clear) is hosted by channel worker
 * ((cid >>> 2) + c) mod workers for the connection's whole life. It is a
 * function of the packet header alone, so the kernel can apply it too: the
 * steering program below runs it on every datagram reaching the server's
 * SO_REUSEPORT group and queues the datagram on that worker's own socket,
 * with no hop through the routing thread. A client allocates cids in steps of
 * four, so its consecutive connections start on consecutive workers, and a
 * connection's four channels spread over up to four workers.
 *
 * Life: pure functions; the program is built once by the routing thread
 * when it binds and handed to the kernel (crates/verbs datagram_socket.rs).
 */
import { CHANNEL_MASK, HEADER_OFFSET, HEADER_SIZE, PacketFlag, PacketType } from '../protocol.js';

/** The channel worker hosting channel `channel` of the connection `cid` (its channel bits are ignored). */
export function channelWorker(cid: number, channel: number, workers: number): number {
  return ((cid >>> 2) + channel) % workers;
}

/** Classic BPF opcode parts (linux/bpf_common.h, filter.h): class | size | mode, or class | operation | source. */
const BPF = {
  LD: 0x00,
  ALU: 0x04,
  JMP: 0x05,
  RET: 0x06,
  MISC: 0x07,
  W: 0x00,
  B: 0x10,
  ABS: 0x20,
  LEN: 0x80,
  ADD: 0x00,
  AND: 0x50,
  RSH: 0x70,
  MOD: 0x90,
  JEQ: 0x10,
  JGT: 0x20,
  JGE: 0x30,
  JSET: 0x40,
  K: 0x00,
  X: 0x08,
  /** RET's source: the accumulator. */
  A: 0x10,
  /** MISC: X = A. */
  TAX: 0x00,
} as const;

/** The routing thread's socket: index 0 of the steered group (workers follow at 1 + worker index). */
export const ROUTING_SOCKET = 0;

/**
 * The kernel's choice of socket for each datagram of the server's port, run
 * on its UDP payload: a client's call packet (DATA, ACK, BUSY, ABORT or
 * ACKALL with CLIENT_INITIATED and a call number) goes to socket
 * 1 + channelWorker(cid, cid & 3); everything else — connection-level
 * packets (call number 0), VERSION, DEBUG, short or unknown datagrams — to
 * the routing thread's socket. It never returns an index past the last
 * worker (the kernel would then spread by 4-tuple hash instead).
 *
 * Encoded as the verbs core reads it: two words per instruction,
 * `code | jt << 16 | jf << 24` and `k`.
 */
export function steeringProgram(workers: number): Uint32Array {
  const routing = 18;
  const instructions: [code: number, jt: number, jf: number, k: number][] = [];
  const add = (code: number, k = 0, jumpTrueTo?: number, jumpFalseTo?: number): void => {
    const next = instructions.length + 1;
    instructions.push([code, jumpTrueTo === undefined ? 0 : jumpTrueTo - next, jumpFalseTo === undefined ? 0 : jumpFalseTo - next, k]);
  };
  add(BPF.LD | BPF.W | BPF.LEN); // 0: A = payload length
  add(BPF.JMP | BPF.JGE | BPF.K, HEADER_SIZE, 2, routing); // 1
  add(BPF.LD | BPF.B | BPF.ABS, HEADER_OFFSET.type); // 2
  add(BPF.JMP | BPF.JGT | BPF.K, PacketType.ACKALL, routing, 4); // 3: types 1..5 are a call's
  add(BPF.JMP | BPF.JEQ | BPF.K, 0, routing, 5); // 4
  add(BPF.LD | BPF.B | BPF.ABS, HEADER_OFFSET.flags); // 5
  add(BPF.JMP | BPF.JSET | BPF.K, PacketFlag.CLIENT_INITIATED, 7, routing); // 6
  add(BPF.LD | BPF.W | BPF.ABS, HEADER_OFFSET.callNumber); // 7
  add(BPF.JMP | BPF.JEQ | BPF.K, 0, routing, 9); // 8: call number 0 is the connection's
  add(BPF.LD | BPF.W | BPF.ABS, HEADER_OFFSET.cid); // 9
  add(BPF.ALU | BPF.AND | BPF.K, CHANNEL_MASK); // 10
  add(BPF.MISC | BPF.TAX); // 11: X = channel
  add(BPF.LD | BPF.W | BPF.ABS, HEADER_OFFSET.cid); // 12
  add(BPF.ALU | BPF.RSH | BPF.K, 2); // 13
  add(BPF.ALU | BPF.ADD | BPF.X); // 14
  add(BPF.ALU | BPF.MOD | BPF.K, workers); // 15
  add(BPF.ALU | BPF.ADD | BPF.K, 1); // 16
  add(BPF.RET | BPF.A); // 17
  add(BPF.RET | BPF.K, ROUTING_SOCKET); // 18 = routing
  const encoded = new Uint32Array(instructions.length * 2);
  instructions.forEach(([code, jt, jf, k], index) => {
    encoded[2 * index] = (code | (jt << 16) | (jf << 24)) >>> 0;
    encoded[2 * index + 1] = k >>> 0;
  });
  return encoded;
}
