/**
 * Round-trip time estimator and retransmission timeout (RFC 6298 smoothing).
 *
 * Life: one per channel, created with the channel and kept across its calls so
 * each new call starts from what the previous ones measured. Touched only by
 * the channel's owning thread. Samples come from ping/ping-response serials
 * and from REQUESTED ACKs naming a packet that was sent exactly once (Karn).
 */
import assert from 'node:assert/strict';
import type { FilledCallOptions } from '../options.js';

export class RttEstimator {
  smoothedMs: number | undefined;
  variationMs = 0;
  minMs = Number.POSITIVE_INFINITY;
  maxMs = 0;
  samples = 0;
  /** When a ping for a first sample last went out: an unanswered ping is not repeated every call. */
  pingedAtMs: number | undefined;
  /** Doubles on every retransmission timeout, reset by the next sample. */
  private backoff = 1;
  private readonly options: FilledCallOptions;

  constructor(options: FilledCallOptions) {
    this.options = options;
  }

  addSample(rttMs: number): void {
    assert.ok(rttMs >= 0, 'an RTT sample is never negative');
    if (this.smoothedMs === undefined) {
      this.smoothedMs = rttMs;
      this.variationMs = rttMs / 2;
    } else {
      this.variationMs = 0.75 * this.variationMs + 0.25 * Math.abs(this.smoothedMs - rttMs);
      this.smoothedMs = 0.875 * this.smoothedMs + 0.125 * rttMs;
    }
    this.minMs = Math.min(this.minMs, rttMs);
    this.maxMs = Math.max(this.maxMs, rttMs);
    this.samples += 1;
    this.backoff = 1;
  }

  /** New data was acknowledged: the path works again, stop backing off (as TCP does). */
  onProgress(): void {
    this.backoff = 1;
  }

  onTimeout(): void {
    this.backoff = Math.min(this.backoff * 2, 64);
  }

  /** True when a ping should go out to get a first sample. */
  wantsPing(nowMs: number): boolean {
    return this.samples === 0 && (this.pingedAtMs === undefined || nowMs - this.pingedAtMs >= this.options.initialRetransmitTimeoutMs);
  }

  retransmitTimeoutMs(): number {
    const base =
      this.smoothedMs === undefined ? this.options.initialRetransmitTimeoutMs : this.smoothedMs + 4 * this.variationMs;
    const bounded = Math.max(this.options.minRetransmitTimeoutMs, base) * this.backoff;
    return Math.min(bounded, this.options.maxRetransmitTimeoutMs);
  }
}
