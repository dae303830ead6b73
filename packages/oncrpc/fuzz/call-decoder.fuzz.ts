/**
 * Fuzzes the ONC RPC call path: >= 1 M random and mutated call messages through
 * Dispatcher.handleCall (header, credentials, and the argument decoders of a
 * real interface - NFSv3 generated from RFC 1813), and random byte streams
 * through the TCP RecordReader. Every case must end in a reply that decodes as
 * an RPC reply with the call's xid, a drop, or (records) an OncRpcError; any
 * other exception fails the run. Prints cases per second.
 *
 *   node fuzz/call-decoder.fuzz.ts [cases] [seed]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XdrReader, XdrWriter, compileFile, isXdrError } from '@roce-rpc/xdr';
import { AuthFlavor, Dispatcher, MessageType, OncRpcError, RecordReader, encodeAuthSys, readOpaqueAuth, writeCallHeader } from '../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const cases = Number(process.argv[2] ?? 1_000_000);
let seed = Number(process.argv[3] ?? Date.now() % 0xffff_ffff) >>> 0 || 1;
const startSeed = seed;

/** xorshift32: reproducible from the printed seed. */
function random(): number {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed;
}
const below = (limit: number): number => random() % limit;

async function loadNfs(): Promise<Record<string, any>> {
  const generated = join(here, '.generated');
  mkdirSync(generated, { recursive: true });
  const target = join(generated, 'nfs3.ts');
  writeFileSync(target, compileFile(join(here, '..', '..', 'xdr', 'defs', 'nfs3.x')).code);
  return import(target);
}

function corpus(nfs: Record<string, any>): Buffer[] {
  const handle = { data: Buffer.from('0123456789abcdef') };
  const unset = { set_it: false };
  const sattr = { mode: { set_it: true, mode: 0o644 }, uid: unset, gid: unset, size: { set_it: true, size: 10n }, atime: { set_it: 1 }, mtime: { set_it: 2, mtime: { seconds: 1, nseconds: 2 } } };
  const calls: [number, (writer: XdrWriter) => void][] = [
    [0, () => {}],
    [1, (writer) => nfs.encode_GETATTR3args(writer, { object: handle })],
    [2, (writer) => nfs.encode_SETATTR3args(writer, { object: handle, new_attributes: sattr, guard: { check: true, obj_ctime: { seconds: 3, nseconds: 4 } } })],
    [3, (writer) => nfs.encode_LOOKUP3args(writer, { what: { dir: handle, name: 'name.txt' } })],
    [6, (writer) => nfs.encode_READ3args(writer, { file: handle, offset: 4096n, count: 8192 })],
    [7, (writer) => nfs.encode_WRITE3args(writer, { file: handle, offset: 0n, count: 5, stable: 2, data: Buffer.from('hello') })],
    [8, (writer) => nfs.encode_CREATE3args(writer, { where: { dir: handle, name: 'new' }, how: { mode: 2, verf: Buffer.alloc(8, 1) } })],
    [11, (writer) => nfs.encode_MKNOD3args(writer, { where: { dir: handle, name: 'dev' }, what: { type: 4, device: { dev_attributes: sattr, spec: { specdata1: 1, specdata2: 2 } } } })],
    [16, (writer) => nfs.encode_READDIR3args(writer, { dir: handle, cookie: 0n, cookieverf: Buffer.alloc(8), count: 4096 })],
    [17, (writer) => nfs.encode_READDIRPLUS3args(writer, { dir: handle, cookie: 9n, cookieverf: Buffer.alloc(8), dircount: 1, maxcount: 2 })],
  ];
  const credentials = [
    { flavor: AuthFlavor.AUTH_NONE, body: Buffer.alloc(0) },
    encodeAuthSys({ stamp: 7, machineName: 'fuzz.lab', uid: 1000, gid: 1000, gids: [1, 2, 3] }),
  ];
  const messages: Buffer[] = [];
  for (const [procedure, encode] of calls) {
    for (const credential of credentials) {
      const writer = new XdrWriter();
      writeCallHeader(writer, { xid: below(0xffff_ffff), program: 100003, version: 3, procedure, credential, verifier: { flavor: 0, body: Buffer.alloc(0) } });
      encode(writer);
      messages.push(writer.finish().toBuffer());
    }
  }
  return messages;
}

const hostileWords = [0, 1, 2, 3, 4, 255, 256, 400, 401, 0x7fff_ffff, 0x8000_0000, 0xffff_fffc, 0xffff_ffff];

function mutate(original: Buffer): Buffer {
  const kind = below(6);
  if (kind === 0) {
    const bytes = Buffer.allocUnsafe(below(160));
    for (let index = 0; index < bytes.length; index++) bytes[index] = below(256);
    return bytes;
  }
  const bytes = Buffer.from(original);
  if (kind === 1) return bytes.subarray(0, below(bytes.length + 1));
  if (kind === 2 && bytes.length >= 4) {
    bytes.writeUInt32BE(hostileWords[below(hostileWords.length)]!, below(bytes.length >>> 2) * 4);
    return bytes;
  }
  if (kind === 3) return Buffer.concat([bytes, Buffer.alloc(1 + below(8), below(256))]);
  const flips = 1 + below(4);
  for (let flip = 0; flip < flips && bytes.length > 0; flip++) bytes[below(bytes.length)] ^= 1 << below(8);
  return bytes;
}

/** Checks a reply's framing without exceptions (the harness must not dominate the cost). */
function checkReply(call: Buffer, reply: ReturnType<Dispatcher['handleCall']>): void {
  if (reply === null) return;
  if (reply instanceof Promise) throw new Error('a synchronous handler produced an asynchronous reply');
  const reader = new XdrReader(reply.message.toBuffer());
  const xid = reader.readUint();
  if (xid !== call.readUInt32BE(0)) throw new Error(`reply xid ${xid} does not match the call`);
  if (reader.readUint() !== MessageType.REPLY) throw new Error('reply is not a REPLY');
  const replyStatus = reader.readUint();
  if (replyStatus === 0) {
    readOpaqueAuth(reader);
    if (reader.readUint() > 5) throw new Error('accept_stat out of range');
  } else if (replyStatus !== 1 || reader.readUint() > 1) {
    throw new Error('malformed rejected reply');
  }
}

/** A stream of 1-3 records cut into random fragments, sometimes damaged, fed in random chunks. */
function recordStream(): Buffer {
  const parts: Buffer[] = [];
  const records = 1 + below(3);
  for (let record = 0; record < records; record++) {
    let remaining = below(300);
    do {
      const length = Math.min(remaining, below(120));
      remaining -= length;
      const header = Buffer.alloc(4);
      header.writeUInt32BE(((remaining === 0 ? 0x8000_0000 : 0) | length) >>> 0);
      parts.push(header, Buffer.alloc(length, record));
    } while (remaining > 0);
  }
  const stream = Buffer.concat(parts);
  if (below(3) === 0 && stream.length > 0) stream[below(stream.length)] ^= 1 << below(8);
  return stream;
}

function fuzzRecords(count: number): { records: number; rejected: number } {
  let rejected = 0;
  let records = 0;
  for (let index = 0; index < count; index++) {
    const reader = new RecordReader(
      { maxRecordBytes: 256, maxFragmentsPerRecord: 8 },
      {
        onRecord: () => {
          records++;
          return below(4) !== 0;
        },
      },
    );
    const stream = recordStream();
    try {
      let offset = 0;
      while (offset < stream.length) {
        const size = 1 + below(64);
        if (reader.stopped) reader.resume();
        reader.push(stream.subarray(offset, offset + size));
        offset += size;
      }
      while (reader.stopped) reader.resume();
    } catch (error) {
      if (!(error instanceof OncRpcError)) throw error;
      rejected++;
    }
  }
  return { records, rejected };
}

async function main(): Promise<void> {
  const nfs = await loadNfs();
  const dispatcher = new Dispatcher();
  const procedures = nfs.NFS_PROGRAM_NFS_V3_DESCRIPTOR.procedures as { name: string }[];
  const refuse = (): never => {
    throw new Error('arguments decoded; no file system behind this fuzz target');
  };
  // NULL answers, GETATTR answers with an error status (the result encoder runs), the rest refuse after decoding.
  const handlers: Record<string, unknown> = Object.fromEntries(procedures.filter((procedure) => procedure.name !== 'NFSPROC3_NULL').map((procedure) => [procedure.name, refuse]));
  handlers.NFSPROC3_GETATTR = () => ({ status: nfs.NFS3ERR_IO });
  dispatcher.addVersion(100003, nfs.NFS_PROGRAM_NFS_V3_DESCRIPTOR, handlers);
  const seeds = corpus(nfs);
  const context = { transport: 'fuzz' };
  const recordCases = Math.floor(cases / 10);
  const callCases = cases - recordCases;
  const started = process.hrtime.bigint();
  for (let index = 0; index < callCases; index++) {
    const call = mutate(seeds[below(seeds.length)]!);
    try {
      checkReply(call, dispatcher.handleCall(call, context));
    } catch (error) {
      console.error(`case ${index} (seed ${startSeed}) escaped: ${isXdrError(error) ? 'XdrError' : ''}`, error, call.toString('hex'));
      process.exit(1);
    }
  }
  const recordResult = fuzzRecords(recordCases);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const metrics = dispatcher.metrics;
  console.log(`seed ${startSeed}: ${cases} cases in ${seconds.toFixed(2)} s = ${Math.round(cases / seconds)} cases/s`);
  console.log(`calls: ${callCases}, dropped ${metrics.dropped}, replies ${JSON.stringify(metrics.replies)}`);
  console.log(`record streams: ${recordCases}, records delivered ${recordResult.records}, streams rejected ${recordResult.rejected}`);
}

await main();
