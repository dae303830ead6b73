/**
 * XDR codec benchmark: the generated NFSv3 (RFC 1813) fattr3 decoder and
 * encoder - Buffer methods through XdrReader/XdrWriter, bounds-checked, typed
 * errors - against a hand-written DataView version of the same 84-byte layout
 * with no checks at all (the floor), measured in the same run; and a
 * 1 MiB READ reply encoded by reference against the same reply copied into one
 * buffer. Prints medians of several runs and ratios (ours / baseline; > 1 is faster).
 *
 *   node bench/codec.bench.ts
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XdrReader, XdrWriter, compileFile } from '../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const runs = 7;

async function loadNfs(): Promise<Record<string, any>> {
  mkdirSync(join(here, '.generated'), { recursive: true });
  const target = join(here, '.generated', 'nfs3.ts');
  writeFileSync(target, compileFile(join(here, '..', 'defs', 'nfs3.x'), { runtimeImport: '../../dist/index.js' }).code);
  return import(target);
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[values.length >> 1]!;
}

function perSecond(iterations: number, run: () => void): number {
  const started = process.hrtime.bigint();
  for (let index = 0; index < iterations; index++) run();
  return iterations / (Number(process.hrtime.bigint() - started) / 1e9);
}

function compare(name: string, iterations: number, ours: () => void, baseline: () => void): void {
  const measured: number[] = [];
  const base: number[] = [];
  for (let run = 0; run < runs; run++) {
    measured.push(perSecond(iterations, ours));
    base.push(perSecond(iterations, baseline));
  }
  const ratio = median(measured) / median(base);
  console.log(`${name.padEnd(40)} ${Math.round(median(measured)).toLocaleString('en').padStart(12)} ops/s   baseline ${Math.round(median(base)).toLocaleString('en').padStart(12)}   ratio ${ratio.toFixed(2)}`);
}

/** The fattr3 layout decoded by hand with a DataView: the baseline. */
function decodeFattr3DataView(view: DataView, offset: number): Record<string, unknown> {
  let at = offset;
  const u32 = () => ((at += 4), view.getUint32(at - 4));
  const u64 = () => ((at += 8), view.getBigUint64(at - 8));
  return {
    type: u32(), mode: u32(), nlink: u32(), uid: u32(), gid: u32(), size: u64(), used: u64(),
    rdev: { specdata1: u32(), specdata2: u32() }, fsid: u64(), fileid: u64(),
    atime: { seconds: u32(), nseconds: u32() }, mtime: { seconds: u32(), nseconds: u32() }, ctime: { seconds: u32(), nseconds: u32() },
  };
}

function encodeFattr3DataView(view: DataView, value: any): void {
  let at = 0;
  const u32 = (v: number) => void (view.setUint32(at, v), (at += 4));
  const u64 = (v: bigint) => void (view.setBigUint64(at, v), (at += 8));
  u32(value.type); u32(value.mode); u32(value.nlink); u32(value.uid); u32(value.gid); u64(value.size); u64(value.used);
  u32(value.rdev.specdata1); u32(value.rdev.specdata2); u64(value.fsid); u64(value.fileid);
  for (const time of [value.atime, value.mtime, value.ctime]) { u32(time.seconds); u32(time.nseconds); }
}

const nfs = await loadNfs();
const attributes = {
  type: 1, mode: 0o644, nlink: 1, uid: 1000, gid: 1000, size: 123456n, used: 131072n,
  rdev: { specdata1: 0, specdata2: 0 }, fsid: 42n, fileid: 987654321n,
  atime: { seconds: 1, nseconds: 2 }, mtime: { seconds: 3, nseconds: 4 }, ctime: { seconds: 5, nseconds: 6 },
};
const writer = new XdrWriter();
nfs.encode_fattr3(writer, attributes);
const encoded = writer.finish().toBuffer();
const view = new DataView(encoded.buffer, encoded.byteOffset, encoded.byteLength);
let sink: unknown;

console.log(`median of ${runs} runs`);
compare('decode fattr3 (generated vs DataView)', 500_000, () => void (sink = nfs.decode_fattr3(new XdrReader(encoded))), () => void (sink = decodeFattr3DataView(view, 0)));
compare('encode fattr3 (generated vs DataView)', 500_000, () => {
  const target = new XdrWriter({ initialBytes: 128 });
  nfs.encode_fattr3(target, attributes);
  sink = target.finish();
}, () => {
  const view = new DataView(new ArrayBuffer(84));
  encodeFattr3DataView(view, attributes);
  sink = view;
});

const data = Buffer.alloc(1 << 20, 7);
const reply = { status: 0, resok: { file_attributes: { attributes_follow: true, attributes }, count: data.length, eof: false, data } };
compare('encode 1 MiB READ3res (by reference vs copied)', 2_000, () => {
  const target = new XdrWriter();
  nfs.encode_READ3res(target, reply);
  sink = target.finish().toChunks();
}, () => {
  const target = new XdrWriter({ bulkThresholdBytes: Number.MAX_SAFE_INTEGER, initialBytes: 1 << 21 });
  nfs.encode_READ3res(target, reply);
  sink = target.finish().toBuffer();
});
if (sink === 0) console.log(sink);
