/**
 * The benchmark service of interfaces/bench.xg, written against the rxgen
 * calling convention (opcode first, XDR arguments). Loaded by every channel
 * worker of a server started with this module as its serviceModule.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RxError } from '../errors.js';
import { RxErrorCode } from '../protocol.js';
import { rxgenService, type Procedure } from '../service.js';

export const BENCH_SERVICE_ID = 42;
export const BenchOpcode = { NULL: 1, ECHO: 2, SEND: 3, RECEIVE: 4, SLEEP: 5 } as const;
/** Bulk procedures move at most this much per call: bounds what one call can make us stream. */
export const BULK_BYTES_MAX = 1 << 30;
/** Sleep holds a channel at most this long. */
const SLEEP_MS_MAX = 60_000;
/** Receive streams in writes of this size. */
const STREAM_CHUNK_BYTES = 64 * 1024;

function readUint32(args: Uint8Array, what: string): number {
  if (args.byteLength < 4) throw new RxError('ERR_RX_SHORT_PACKET', `${what}: missing afs_uint32`, RxErrorCode.RXGEN_SS_UNMARSHAL);
  return new DataView(args.buffer, args.byteOffset, 4).getUint32(0);
}

function uint32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value);
  return bytes;
}

const procedures = new Map<number, Procedure>([
  [BenchOpcode.NULL, () => new Uint8Array(0)],
  // Echo's XDR argument (length-prefixed, padded opaque) is exactly its XDR reply.
  [BenchOpcode.ECHO, (args) => args],
  [
    BenchOpcode.SEND,
    {
      async split(call) {
        const length = readUint32(await call.readExactly(4), 'Send');
        if (length > BULK_BYTES_MAX) throw new RxError('ERR_RX_BAD_PACKET', 'Send length too large', RxErrorCode.RXGEN_SS_UNMARSHAL);
        let received = 0;
        for (let chunk = await call.read(); chunk !== undefined; chunk = await call.read()) received += chunk.byteLength;
        await call.end(uint32(received));
      },
    },
  ],
  [
    BenchOpcode.RECEIVE,
    {
      async split(call) {
        const length = readUint32(await call.readExactly(4), 'Receive');
        if (length > BULK_BYTES_MAX) throw new RxError('ERR_RX_BAD_PACKET', 'Receive length too large', RxErrorCode.RXGEN_SS_UNMARSHAL);
        const chunk = new Uint8Array(STREAM_CHUNK_BYTES).fill(0x5a);
        for (let sent = 0; sent < length; sent += STREAM_CHUNK_BYTES) await call.write(chunk.subarray(0, Math.min(STREAM_CHUNK_BYTES, length - sent)));
        await call.end();
      },
    },
  ],
  [
    BenchOpcode.SLEEP,
    async (args) => {
      await sleep(Math.min(readUint32(args, 'Sleep'), SLEEP_MS_MAX));
      return new Uint8Array(0);
    },
  ],
]);

export const services = [rxgenService(BENCH_SERVICE_ID, 'bench', procedures)];
