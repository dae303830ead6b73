/**
 * Reply construction (RFC 8166 §3.5, §4.4): given an encoded RPC reply and the
 * chunks the client offered, decide how the reply travels. Pure and
 * transport-neutral: it names the RDMA Writes and the Send parts, the transport
 * posts them (Writes first, the Send last, so the Send completion proves the
 * Writes are done).
 *
 *   1. DDP-eligible result items (XdrBulkItem.ddpEligible) go, in order, into the
 *      client's Write chunks: the n-th item into the n-th chunk, data without its
 *      XDR pad. Items beyond the last chunk stay inline. Unused chunks are echoed
 *      with zero lengths, as Linux does.
 *   2. What is left is sent inline (RDMA_MSG) if header + rest fit the client's
 *      receive buffer.
 *   3. Otherwise the reply goes into the Reply chunk (RDMA_NOMSG). The whole
 *      reply, DDP items included, is preferred there: the Linux client refuses an
 *      RDMA_NOMSG reply whose Write list carries data (rpcrdma_decode_nomsg). Only
 *      if the whole reply does not fit are the Write chunks used alongside it.
 *   4. If nothing fits, the answer is RDMA_ERROR / ERR_CHUNK.
 */
import type { XdrBulkItem } from '@roce-rpc/xdr';
import { xdrPaddedLength } from '@roce-rpc/xdr';
import type { WriteChunk } from '../header/chunks.js';
import { replyHeaderBytes, type ReplyHeaderFields } from '../header/encode.js';
import { RdmaProcedure } from '../protocol.js';
import { scatterOntoChunk, unusedChunk, type RdmaWrite } from './scatter.js';

/** An encoded RPC reply: what XdrWriter.finish() hands over (an XdrEncoding). */
export interface ReplyBody {
  readonly inline: Uint8Array;
  readonly bulk: readonly XdrBulkItem[];
  readonly byteLength: number;
}

export interface ReplyPlanInput {
  readonly xid: number;
  readonly credits: number;
  readonly body: ReplyBody;
  readonly writeList: readonly WriteChunk[];
  readonly replyChunk: WriteChunk | null;
  /** Largest Send the client can receive (its inline threshold), bounded by our send buffer. */
  readonly sendLimitBytes: number;
}

export const ReplyRejectReason = {
  /** A DDP-eligible item is longer than the Write chunk the client gave for it. */
  WRITE_CHUNK_TOO_SMALL: 'write-chunk-too-small',
  /** The reply fits neither inline nor in the Reply chunk (or there is none). */
  REPLY_TOO_LARGE: 'reply-too-large',
} as const;
export type ReplyRejectReason = (typeof ReplyRejectReason)[keyof typeof ReplyRejectReason];

export type ReplyPlan =
  | {
      /** RDMA_MSG: header + `sendParts` in one Send, after `writes`. */
      readonly kind: 'inline' | 'reply-chunk';
      readonly header: ReplyHeaderFields;
      readonly headerBytes: number;
      readonly writes: readonly RdmaWrite[];
      /** RPC bytes that follow the header in the Send (none for RDMA_NOMSG). */
      readonly sendParts: readonly Uint8Array[];
      /** Bytes of the reply moved by RDMA Write (Write chunks and Reply chunk). */
      readonly writtenBytes: number;
    }
  | { readonly kind: 'error'; readonly reason: ReplyRejectReason; readonly detail: string };

const zeroPad = new Uint8Array(3);

/** The reply stream as views, leaving out the items in `skip` (and their pads). */
function streamPieces(body: ReplyBody, skip: ReadonlySet<XdrBulkItem>): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  let cursor = 0;
  for (const item of body.bulk) {
    if (item.position > cursor) pieces.push(body.inline.subarray(cursor, item.position));
    cursor = item.position;
    if (skip.has(item)) continue;
    if (item.data.length > 0) pieces.push(item.data);
    if (item.padding > 0) pieces.push(zeroPad.subarray(0, item.padding));
  }
  if (cursor < body.inline.length) pieces.push(body.inline.subarray(cursor));
  return pieces;
}

interface DirectPlacement {
  readonly placed: ReadonlySet<XdrBulkItem>;
  readonly placedBytes: number;
  readonly writes: RdmaWrite[];
  readonly echoed: WriteChunk[];
}

/** Step 1: DDP-eligible items into Write chunks, in order. */
function placeDirectData(body: ReplyBody, writeList: readonly WriteChunk[]): DirectPlacement | string {
  const eligible = body.bulk.filter((item) => item.ddpEligible);
  const placed = new Set<XdrBulkItem>();
  const writes: RdmaWrite[] = [];
  const echoed: WriteChunk[] = [];
  let placedBytes = 0;
  for (const [index, chunk] of writeList.entries()) {
    const item = eligible[index];
    if (item === undefined) {
      echoed.push(unusedChunk(chunk));
      continue;
    }
    if (item.data.length > chunk.length) return `item ${index} of ${item.data.length} bytes, chunk of ${chunk.length}`;
    const scattered = scatterOntoChunk([item.data], chunk);
    writes.push(...scattered.writes);
    echoed.push(scattered.written);
    placed.add(item);
    placedBytes += xdrPaddedLength(item.data.length);
  }
  return { placed, placedBytes, writes, echoed };
}

/**
 * Decides how a reply travels.
 * @returns a plan to post, or a rejection the caller answers with RDMA_ERROR / ERR_CHUNK
 */
export function planReply(input: ReplyPlanInput): ReplyPlan {
  const { body, writeList, replyChunk } = input;
  const direct = placeDirectData(body, writeList);
  if (typeof direct === 'string') return { kind: 'error', reason: ReplyRejectReason.WRITE_CHUNK_TOO_SMALL, detail: direct };

  const inlineHeader: ReplyHeaderFields = {
    xid: input.xid,
    credits: input.credits,
    procedure: RdmaProcedure.MSG,
    writeList: direct.echoed,
    replyChunk: null,
  };
  const inlineHeaderBytes = replyHeaderBytes(inlineHeader);
  const restBytes = body.byteLength - direct.placedBytes;
  if (inlineHeaderBytes + restBytes <= input.sendLimitBytes) {
    return {
      kind: 'inline',
      header: inlineHeader,
      headerBytes: inlineHeaderBytes,
      writes: direct.writes,
      sendParts: streamPieces(body, direct.placed),
      writtenBytes: direct.placedBytes,
    };
  }
  if (replyChunk === null) {
    return { kind: 'error', reason: ReplyRejectReason.REPLY_TOO_LARGE, detail: `${restBytes} bytes inline, no Reply chunk` };
  }
  return planReplyChunk(input, replyChunk, direct);
}

/** Step 3: the whole reply into the Reply chunk, or the rest beside the Write chunks. */
function planReplyChunk(input: ReplyPlanInput, replyChunk: WriteChunk, direct: DirectPlacement): ReplyPlan {
  const { body, writeList } = input;
  const whole = body.byteLength <= replyChunk.length;
  const skip: ReadonlySet<XdrBulkItem> = whole ? new Set() : direct.placed;
  const restBytes = whole ? body.byteLength : body.byteLength - direct.placedBytes;
  if (restBytes > replyChunk.length) {
    return {
      kind: 'error',
      reason: ReplyRejectReason.REPLY_TOO_LARGE,
      detail: `${restBytes} bytes for a ${replyChunk.length}-byte Reply chunk`,
    };
  }
  const scattered = scatterOntoChunk(streamPieces(body, skip), replyChunk);
  const header: ReplyHeaderFields = {
    xid: input.xid,
    credits: input.credits,
    procedure: RdmaProcedure.NOMSG,
    writeList: whole ? writeList.map(unusedChunk) : direct.echoed,
    replyChunk: scattered.written,
  };
  const headerBytes = replyHeaderBytes(header);
  if (headerBytes > input.sendLimitBytes) {
    return { kind: 'error', reason: ReplyRejectReason.REPLY_TOO_LARGE, detail: `a ${headerBytes}-byte header` };
  }
  return {
    kind: 'reply-chunk',
    header,
    headerBytes,
    writes: whole ? scattered.writes : [...direct.writes, ...scattered.writes],
    sendParts: [],
    writtenBytes: whole ? body.byteLength : direct.placedBytes + restBytes,
  };
}
