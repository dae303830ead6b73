/**
 * RxRPC wire protocol: every constant and byte layout this package puts on or
 * reads from the wire, and nothing else. All multi-byte fields are big-endian
 * (network order). Sources: OpenAFS src/rx/rx_packet.h and rx.h, Linux
 * net/rxrpc/protocol.h; layouts are restated here as offsets so the codec and
 * the tests share one truth.
 */

// ---------------------------------------------------------------------------
// The packet header (28 bytes), at the start of every datagram.
//
//   0       4       8       12      16      20   21   22   23   24      26      28
//   +-------+-------+-------+-------+-------+----+----+----+----+-------+-------+
//   | epoch |  cid  | call# |  seq  |serial |type|flag|user|sec | cksum |service|
//   +-------+-------+-------+-------+-------+----+----+----+----+-------+-------+
// ---------------------------------------------------------------------------
export const HEADER_SIZE = 28;
export const HEADER_OFFSET = {
  epoch: 0,
  cid: 4,
  callNumber: 8,
  seq: 12,
  serial: 16,
  type: 20,
  flags: 21,
  userStatus: 22,
  securityIndex: 23,
  /** "spare" in OpenAFS; rxkad stores a header checksum here. Zero under null security. */
  checksum: 24,
  serviceId: 26,
} as const;

/** Packet types (header.type). 10–12 are unused; VERSION is 13. */
export const PacketType = {
  DATA: 1,
  ACK: 2,
  BUSY: 3,
  ABORT: 4,
  ACKALL: 5,
  CHALLENGE: 6,
  RESPONSE: 7,
  DEBUG: 8,
  PARAMS: 9,
  VERSION: 13,
} as const;
export type PacketType = (typeof PacketType)[keyof typeof PacketType];
/** Size of the per-type counter arrays in rx_statistics: types 1..13, stored at index type - 1. */
export const PACKET_TYPE_COUNT = 13;

/** Header flags (header.flags). SLOW_START_OK (on ACKs) and JUMBO_PACKET (on DATA) share a bit. */
export const PacketFlag = {
  CLIENT_INITIATED: 0x01,
  REQUEST_ACK: 0x02,
  LAST_PACKET: 0x04,
  MORE_PACKETS: 0x08,
  SLOW_START_OK: 0x20,
  JUMBO_PACKET: 0x20,
} as const;

/** Security indices. Only null security (0) is implemented. */
export const SecurityIndex = { NULL: 0, RXKAD: 2 } as const;

// ---------------------------------------------------------------------------
// Connections and channels.
// ---------------------------------------------------------------------------
/** Calls a connection can carry at once: the low bits of cid select the channel. */
export const CHANNELS_PER_CONNECTION = 4;
export const CHANNEL_MASK = CHANNELS_PER_CONNECTION - 1;
/** cid & CID_MASK identifies the connection; cid & CHANNEL_MASK the channel. */
export const CID_MASK = ~CHANNEL_MASK >>> 0;
/** cids advance by the channel count so each new connection gets four fresh channel ids. */
export const CID_INCREMENT = CHANNELS_PER_CONNECTION;
/** An epoch with this bit set asks the server to match connections on {epoch, cid} only, not the peer address. */
export const EPOCH_ONLY_MATCH_BIT = 0x80000000;

// ---------------------------------------------------------------------------
// DATA packets and jumbograms.
//
// A jumbogram packs several DATA packets in one datagram: every packet but the
// last carries exactly JUMBO_DATA_SIZE bytes and is followed by a 4-byte jumbo
// header holding the next packet's flags and checksum; the next packet's seq
// and serial are the previous ones plus one.
//
//   | header(28) | data(1412) | jflags spare cksum(4) | data(1412) | jhdr(4) | ... | data(<=1412) |
// ---------------------------------------------------------------------------
export const JUMBO_DATA_SIZE = 1412;
export const JUMBO_HEADER_SIZE = 4;
export const JUMBO_HEADER_OFFSET = { flags: 0, spare: 1, checksum: 2 } as const;
/** Packets we put in one jumbogram, and accept in one (advertised as maxDgramPackets). */
export const JUMBO_PACKETS_MAX = 4;
/** The datagram such a jumbogram makes: the largest we advertise as maxMTU. */
export const JUMBO_DATAGRAM_SIZE = 28 + JUMBO_PACKETS_MAX * (JUMBO_DATA_SIZE + JUMBO_HEADER_SIZE) - JUMBO_HEADER_SIZE;
/** IPv6 + fragment + UDP headers that OpenAFS reserves when sizing packets. */
export const IP_UDP_OVERHEAD = 40 + 8 + 8;
/** The largest packet OpenAFS assumes every path carries: 1500 - IP/UDP overhead. */
export const DEFAULT_PACKET_SIZE = 1500 - IP_UDP_OVERHEAD;
/** The most data one packet of ours carries: a jumbo buffer, so a packet is always a valid jumbo sub-packet. */
export const MAX_DATA_PER_PACKET = JUMBO_DATA_SIZE;
/** OpenAFS never sends a packet larger than this (header included). */
export const MAX_PACKET_SIZE = 16384;

// ---------------------------------------------------------------------------
// ACK packets: the ackPacket body, then the soft-ACK table, 3 bytes of padding,
// then the trailer (AFS 3.3–3.5 additions).
//
//   0     2     4        8          12     16  17  18        18+n  21+n
//   +-----+-----+--------+----------+------+---+---+---- ... --+---+------------+
//   |bufSp|skew |first   |previous  |serial|rsn| n | acks[n]   |pad| trailer 16 |
//   +-----+-----+--------+----------+------+---+---+---- ... --+---+------------+
//   trailer: maxMTU(4) ifMTU(4) rwind(4) maxDgramPackets(4)
// ---------------------------------------------------------------------------
export const ACK_OFFSET = {
  bufferSpace: 0,
  maxSkew: 2,
  firstPacket: 4,
  previousPacket: 8,
  serial: 12,
  reason: 16,
  nAcks: 17,
  acks: 18,
} as const;
export const ACK_BODY_SIZE = 18;
export const ACK_PADDING = 3;
/** Bytes from the start of the body to the trailer: rx_AckDataSize(nAcks). */
export const ackTrailerOffset = (nAcks: number): number => ACK_BODY_SIZE + nAcks + ACK_PADDING;
export const ACK_TRAILER_SIZE = 16;
export const ACK_TRAILER_OFFSET = { maxMTU: 0, ifMTU: 4, rwind: 8, maxDgramPackets: 12 } as const;
/** nAcks is one byte: a soft-ACK table never describes more than 255 packets. */
export const MAX_SOFT_ACKS = 255;

/** ACK reasons (ackPacket.reason). */
export const AckReason = {
  REQUESTED: 1,
  DUPLICATE: 2,
  OUT_OF_SEQUENCE: 3,
  EXCEEDS_WINDOW: 4,
  NOSPACE: 5,
  PING: 6,
  PING_RESPONSE: 7,
  DELAY: 8,
  IDLE: 9,
} as const;
export type AckReason = (typeof AckReason)[keyof typeof AckReason];

/** Soft-ACK table entries. */
export const SoftAck = { NACK: 0, ACK: 1 } as const;

// ---------------------------------------------------------------------------
// ABORT: the body is one signed 32-bit error code. BUSY and ACKALL have no body.
// ---------------------------------------------------------------------------
export const ABORT_BODY_SIZE = 4;

/** Rx error codes (-1..-64 are Rx's; rxgen uses < -64; applications use positive codes). */
export const RxErrorCode = {
  CALL_DEAD: -1,
  INVALID_OPERATION: -2,
  CALL_TIMEOUT: -3,
  EOF: -4,
  PROTOCOL_ERROR: -5,
  USER_ABORT: -6,
  ADDRINUSE: -7,
  MSGSIZE: -8,
  RESTARTING: -100,
  /**
   * Not an Rx code but the one servers send to refuse work for now: OpenAFS
   * fileservers' rx_SetBusyThreshold uses VBUSY (110), which AFS clients take as
   * "retry later". RxServer sends it for new calls while it drains and for new
   * connections once close() began; services may throw it at their own bounds.
   */
  SERVER_BUSY: 110,
  /** rxgen: the server does not implement the requested opcode. */
  RXGEN_OPCODE: -455,
  /** rxgen: the server could not decode the arguments. */
  RXGEN_SS_UNMARSHAL: -451,
  /** rxgen: the client could not decode the results. */
  RXGEN_CC_UNMARSHAL: -450,
} as const;

// ---------------------------------------------------------------------------
// VERSION: a client-initiated VERSION packet is answered, CLIENT_INITIATED
// cleared, with a 65-byte NUL-padded version string.
// ---------------------------------------------------------------------------
export const VERSION_REPLY_SIZE = 65;

// ---------------------------------------------------------------------------
// DEBUG (rxdebug). Request body: rx_debugIn { int32 type; int32 index; }.
// Replies echo the header with CLIENT_INITIATED cleared.
// ---------------------------------------------------------------------------
export const DEBUG_IN_SIZE = 8;
export const DebugRequest = {
  GETSTATS: 1,
  GETCONN: 2,
  GETALLCONN: 3,
  RXSTATS: 4,
  GETPEER: 5,
} as const;
/** Reply to an unknown debug type: both fields of a debugIn set to this. */
export const DEBUG_BAD_TYPE = -8;
/** Debug protocol version we speak: 'S' is the latest, with nPackets in debugStats. */
export const DEBUG_VERSION = 'S'.charCodeAt(0);

/** rx_debugStats: 3 int32, 4 chars, 4 int32, 6 spare int32 = 56 bytes. */
export const DEBUG_STATS_OFFSET = {
  nFreePackets: 0,
  packetReclaims: 4,
  callsExecuted: 8,
  waitingForPackets: 12,
  usedFDs: 13,
  version: 14,
  spare1: 15,
  nWaiting: 16,
  idleThreads: 20,
  nWaited: 24,
  nPackets: 28,
} as const;
export const DEBUG_STATS_SIZE = 56;

/**
 * rx_statistics as sent for RXSTATS: a flat array of int32 (struct clock is
 * two int32: seconds, microseconds). Field order is fixed by rxdebug.
 */
export const RX_STATISTICS_FIELDS = [
  ['packetRequests', 1],
  ['receivePktAllocFailures', 1],
  ['sendPktAllocFailures', 1],
  ['specialPktAllocFailures', 1],
  ['socketGreedy', 1],
  ['bogusPacketOnRead', 1],
  ['bogusHost', 1],
  ['noPacketOnRead', 1],
  ['noPacketBuffersOnRead', 1],
  ['selects', 1],
  ['sendSelects', 1],
  ['packetsRead', PACKET_TYPE_COUNT],
  ['dataPacketsRead', 1],
  ['ackPacketsRead', 1],
  ['dupPacketsRead', 1],
  ['spuriousPacketsRead', 1],
  ['packetsSent', PACKET_TYPE_COUNT],
  ['ackPacketsSent', 1],
  ['pingPacketsSent', 1],
  ['abortPacketsSent', 1],
  ['busyPacketsSent', 1],
  ['dataPacketsSent', 1],
  ['dataPacketsReSent', 1],
  ['dataPacketsPushed', 1],
  ['ignoreAckedPacket', 1],
  ['totalRtt', 2],
  ['minRtt', 2],
  ['maxRtt', 2],
  ['nRttSamples', 1],
  ['nServerConns', 1],
  ['nClientConns', 1],
  ['nPeerStructs', 1],
  ['nCallStructs', 1],
  ['nFreeCallStructs', 1],
  ['netSendFailures', 1],
  ['fatalErrors', 1],
  ['ignorePacketDally', 1],
  ['receiveCbufPktAllocFailures', 1],
  ['sendCbufPktAllocFailures', 1],
  ['nBusies', 1],
  ['spares', 4],
] as const;
export type RxStatisticsField = (typeof RX_STATISTICS_FIELDS)[number][0];
/** 72 int32 words = 288 bytes. */
export const RX_STATISTICS_WORDS = RX_STATISTICS_FIELDS.reduce((sum, [, words]) => sum + words, 0);
export const RX_STATISTICS_SIZE = RX_STATISTICS_WORDS * 4;

/**
 * rx_debugConn (GETCONN/GETALLCONN reply) as a 64-bit rxdebug lays it out (it
 * holds a pointer): we report no connections, so only the end marker matters.
 */
export const DEBUG_CONN_SIZE = 184;
export const DEBUG_CONN_CID_OFFSET = 4;
/** rx_debugPeer (GETPEER reply): likewise only the end marker (host = 0xffffffff). */
export const DEBUG_PEER_SIZE = 132;
export const DEBUG_END_MARKER = 0xffffffff;

// ---------------------------------------------------------------------------
// rxgen calling convention: the first 4 bytes of a request are the opcode.
// ---------------------------------------------------------------------------
export const OPCODE_SIZE = 4;
