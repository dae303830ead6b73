/**
 * The benchmark service of interfaces/bench.xg, built from xdrgen's
 * descriptor table. Loaded by every channel worker of a server started with
 * this module as its serviceModule.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CallStream } from '../call/call-stream.js';
import { RxError } from '../errors.js';
import { BENCH_PACKAGE } from '../generated/bench.js';
import { serviceFromPackage } from '../interface.js';
import { RxErrorCode } from '../protocol.js';

export const BENCH_SERVICE_ID = 42;
/** Bulk procedures move at most this much per call: bounds what one call can make us stream. */
export const BULK_BYTES_MAX = 1 << 30;
/** Sleep holds a channel at most this long. */
const SLEEP_MS_MAX = 60_000;
/** Receive streams in writes of this size. */
const STREAM_CHUNK_BYTES = 64 * 1024;
const streamChunk = new Uint8Array(STREAM_CHUNK_BYTES).fill(0x5a);

function checkBulkLength(length: number): void {
  if (length > BULK_BYTES_MAX) throw new RxError('ERR_RX_BAD_PACKET', `bulk length ${length} exceeds ${BULK_BYTES_MAX}`, RxErrorCode.RXGEN_SS_UNMARSHAL);
}

export const services = [
  serviceFromPackage(BENCH_SERVICE_ID, BENCH_PACKAGE, {
    Null: () => ({}),
    Echo: (args: { request: Uint8Array }) => ({ reply: args.request }),
    async Send(args: { length: number }, call: CallStream) {
      checkBulkLength(args.length);
      let received = 0;
      for (let chunk = await call.read(); chunk !== undefined; chunk = await call.read()) received += chunk.byteLength;
      return { received };
    },
    async Receive(args: { length: number }, call: CallStream) {
      checkBulkLength(args.length);
      for (let sent = 0; sent < args.length; sent += STREAM_CHUNK_BYTES) {
        await call.write(streamChunk.subarray(0, Math.min(STREAM_CHUNK_BYTES, args.length - sent)));
      }
      return {};
    },
    async Sleep(args: { milliseconds: number }) {
      await sleep(Math.min(args.milliseconds, SLEEP_MS_MAX));
      return {};
    },
  }),
];
