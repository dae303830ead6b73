/**
 * Fuzzes the call transport-header decoder: mutates valid headers of every
 * shape (and pure noise) and feeds them to decodeCallHeader. The only thing that
 * may come out is a HeaderRejection; an accepted header must re-encode to the
 * same bytes. Anything else is printed with its input and fails the run (the
 * loop, the seeded random source and the report are in harness.ts).
 *
 *   node fuzz/transport_header.fuzz.ts [cases=1000000] [seed]
 */
import { decodeCallHeader, encodeCallHeader, RdmaProcedure } from '../dist/index.js';
import type { CallHeaderFields, CallTransportHeader } from '../dist/index.js';
import { runFuzzer, startFuzzer } from './harness.ts';

const fuzzer = startFuzzer();
const below = fuzzer.below;

const segment = (handle: number, length: number) => ({ handle, length, offset: BigInt(below(0x7fffffff)) * 4096n });
const noChunks = { callChunk: null, readChunks: [], writeList: [], replyChunk: null } as const;

/** Valid headers of every shape the decoder accepts, with inline bodies where they need one. */
const corpus: Buffer[] = [
  withBody({ xid: 1, credits: 64, procedure: RdmaProcedure.MSG, ...noChunks }, 64),
  withBody({ xid: 2, credits: 8, procedure: RdmaProcedure.MSG, ...noChunks, writeList: [{ length: 8192, segments: [segment(3, 4096), segment(4, 4096)] }] }, 120),
  withBody({ xid: 3, credits: 1, procedure: RdmaProcedure.MSG, ...noChunks, readChunks: [{ position: 32, length: 1000, segments: [segment(5, 1000)] }, { position: 1064, length: 8, segments: [segment(6, 8)] }], replyChunk: { length: 4096, segments: [segment(7, 4096)] } }, 80),
  withBody({ xid: 4, credits: 128, procedure: RdmaProcedure.NOMSG, ...noChunks, callChunk: { position: 0, length: 9000, segments: [segment(8, 4096), segment(9, 4904)] }, readChunks: [{ position: 512, length: 4096, segments: [segment(10, 4096)] }], writeList: [{ length: 4096, segments: [segment(11, 4096)] }], replyChunk: { length: 4096, segments: [segment(12, 4096)] } }, 0),
];

function withBody(fields: CallHeaderFields, bodyBytes: number): Buffer {
  return Buffer.concat([encodeCallHeader(fields), Buffer.alloc(bodyBytes, 0x5a)]);
}

const interestingWords = [0, 1, 2, 3, 4, 5, 8, 0xffffffff, 0x80000000, 0x7fffffff, 0x100000, 0x100001, 4096, 258, 259];

function mutate(input: Buffer): Buffer {
  let bytes = Buffer.from(input);
  const rounds = 1 + below(4);
  for (let round = 0; round < rounds; round++) {
    const word = below(Math.max(1, bytes.length >>> 2)) * 4;
    switch (below(7)) {
      case 0: // flip a byte
        if (bytes.length > 0) bytes[below(bytes.length)] ^= 1 + below(255);
        break;
      case 1: // an interesting word where a field was
        if (word + 4 <= bytes.length) bytes.writeUInt32BE(interestingWords[below(interestingWords.length)]!, word);
        break;
      case 2: // truncate
        bytes = bytes.subarray(0, below(bytes.length + 1));
        break;
      case 3: // duplicate a run of words (more segments, more chunks)
        bytes = Buffer.concat([bytes.subarray(0, word), bytes.subarray(word, word + 4 * (1 + below(12))), bytes.subarray(word)]);
        break;
      case 4: // delete a run of words
        bytes = Buffer.concat([bytes.subarray(0, word), bytes.subarray(word + 4 * (1 + below(6)))]);
        break;
      case 5: // small arithmetic on a word (lengths, positions off by a little)
        if (word + 4 <= bytes.length) bytes.writeUInt32BE((bytes.readUInt32BE(word) + below(9) - 4) >>> 0, word);
        break;
      default: // append noise
        bytes = Buffer.concat([bytes, randomBytes(below(64))]);
    }
  }
  return bytes;
}

function randomBytes(length: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let index = 0; index < length; index++) bytes[index] = below(256);
  return bytes;
}

/** An accepted header must describe its own bytes: re-encoding yields them again. */
function checkAccepted(input: Buffer, header: CallTransportHeader): void {
  const reencoded = encodeCallHeader(header);
  if (!reencoded.equals(input.subarray(0, header.headerBytes))) throw new Error('accepted header does not re-encode to its bytes');
  if (header.headerBytes + header.inlineBodyBytes !== input.length) throw new Error('header and body lengths do not add up');
}

runFuzzer(
  'transport header',
  fuzzer,
  () => (below(20) === 0 ? randomBytes(below(200)) : mutate(corpus[below(corpus.length)]!)),
  (input, count) => {
    checkAccepted(input, decodeCallHeader(input));
    count('accepted');
  },
);
