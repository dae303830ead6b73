/**
 * What a channel's calls learned about sending to the peer: the receive
 * window and jumbogram size its ACK trailers advertise, and the congestion
 * window the last call ended with.
 *
 * Life: one per channel, created with the channel and kept across its calls
 * (as OpenAFS keeps these in its peer), touched only by the channel's owning
 * thread. A new call's Sender starts from it, so only a channel's first call
 * sends single packets into a small window until the peer's first ACK; each
 * Sender writes back what it learns. The slow-start threshold a loss set is
 * not carried: each call may slow-start from the window the last one reached.
 */
import type { FilledCallOptions } from '../options.js';
import { MAX_SOFT_ACKS } from '../protocol.js';

/** The peer window assumed before the peer's first ACK trailer. */
export const UNKNOWN_PEER_WINDOW = 8;

export class PeerPath {
  /** The peer's advertised receive window (ACK trailer rwind). */
  peerWindow = UNKNOWN_PEER_WINDOW;
  /** Packets the peer accepts in one jumbogram (ACK trailer maxDgramPackets and maxMTU). */
  peerJumboPackets = 1;
  congestionWindow: number;

  slowStartThreshold: number = MAX_SOFT_ACKS;

  constructor(options: FilledCallOptions) {
    this.congestionWindow = options.initialCongestionWindow;
  }
}
