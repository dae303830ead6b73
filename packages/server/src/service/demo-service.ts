/**
 * The demo service: NULL, ECHO, bulk READ/WRITE and a small key-value store,
 * written once and served over every transport.
 *
 * The key-value store keeps one file per key under a directory shared by all
 * processes and threads of a server run (like nfsd's threads sharing the
 * file system), so a PUT answered by one thread is seen by a GET answered by
 * any other. Writes go to a temporary file renamed over the key's file, so a
 * reader sees the old or the new value, never half of one.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { xdrBool, xdrOptional, xdrString, xdrStruct, xdrUint, xdrVariableOpaque, xdrVoid } from '@roce-rpc/xdr';
import { defineService } from './definition.js';

/** Largest ECHO payload: one RPC-over-RDMA inline-free reply chunk, small enough for UDP without jumbo. */
export const ECHO_BYTES_MAX = 64 * 1024;
/** Largest bulk READ/WRITE: 1 MiB, the size NFS clients use for rsize/wsize. */
export const BULK_BYTES_MAX = 1024 * 1024;
export const KEY_BYTES_MAX = 255;
export const VALUE_BYTES_MAX = 64 * 1024;
/** Keys in the store: bounds its disk use to KEYS_MAX × VALUE_BYTES_MAX = 256 MiB. */
export const KEYS_MAX = 4096;

export const DEMO_PROGRAM = 0x2000_0101;
export const DEMO_VERSION = 1;
export const DEMO_RX_SERVICE_ID = 1701;

const readArguments = xdrStruct('read_args', { offset: xdrUint, length: xdrUint });
const writeResult = xdrStruct('write_res', { count: xdrUint, digest: xdrVariableOpaque(32) });
const putArguments = xdrStruct('put_args', { key: xdrString(KEY_BYTES_MAX), value: xdrVariableOpaque(VALUE_BYTES_MAX) });

/** READ's bytes are a pure function of the offset, so a client can check them without a prior WRITE. */
export function bulkPattern(offset: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let index = 0; index < length; index++) bytes[index] = (offset + index) * 31 % 251;
  return bytes;
}

let storeDirectory = '';

function keyPath(key: string): string {
  return path.join(storeDirectory, Buffer.from(key, 'utf8').toString('hex'));
}

export class KeyValueStoreFullError extends Error {
  readonly code = 'ERR_DEMO_STORE_FULL';
}

export default defineService({
  name: 'demo',
  program: DEMO_PROGRAM,
  version: DEMO_VERSION,
  rxServiceId: DEMO_RX_SERVICE_ID,
  async init({ options, instanceId }) {
    storeDirectory = typeof options.dataDirectory === 'string' ? options.dataDirectory : path.join(os.tmpdir(), `roce-rpc-demo-${instanceId}`);
    await mkdir(storeDirectory, { recursive: true });
  },
  procedures: {
    null: { number: 0, argument: xdrVoid, result: xdrVoid, handler: () => undefined, inline: true },
    echo: { number: 1, argument: xdrVariableOpaque(ECHO_BYTES_MAX), result: xdrVariableOpaque(ECHO_BYTES_MAX), handler: (data: Uint8Array) => data },
    read: {
      number: 2,
      argument: readArguments,
      result: xdrVariableOpaque(BULK_BYTES_MAX, true),
      handler: ({ offset, length }: { offset: number; length: number }) => bulkPattern(offset, Math.min(length, BULK_BYTES_MAX)),
    },
    write: {
      number: 3,
      argument: xdrVariableOpaque(BULK_BYTES_MAX, true),
      result: writeResult,
      handler: (data: Uint8Array) => ({ count: data.byteLength, digest: createHash('sha256').update(data).digest() }),
    },
    put: {
      number: 4,
      argument: putArguments,
      result: xdrVoid,
      async handler({ key, value }: { key: string; value: Uint8Array }) {
        const target = keyPath(key);
        const isNew = await readFile(target).then(() => false, () => true);
        if (isNew && (await readdir(storeDirectory)).length >= KEYS_MAX) throw new KeyValueStoreFullError(`store holds ${KEYS_MAX} keys`);
        const temporary = `${target}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
        await writeFile(temporary, value);
        await rename(temporary, target);
      },
    },
    get: {
      number: 5,
      argument: xdrString(KEY_BYTES_MAX),
      result: xdrOptional(xdrVariableOpaque(VALUE_BYTES_MAX)),
      handler: (key: string) => readFile(keyPath(key)).then((value) => new Uint8Array(value), () => null),
    },
    delete: {
      number: 6,
      argument: xdrString(KEY_BYTES_MAX),
      result: xdrBool,
      handler: (key: string) => rm(keyPath(key)).then(() => true, () => false),
    },
  },
});
