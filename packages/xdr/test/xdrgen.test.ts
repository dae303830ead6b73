/**
 * The interface compiler on real interface files: RFC 1813 NFSv3 and MOUNT,
 * RFC 1833 rpcbind/portmapper, and an rxgen `.xg`. Generated modules are
 * written under test/.generated, type-checked by importing them, and exercised
 * with byte-exact wire comparisons and hostile input.
 */
import { mkdirSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, test } from 'vitest';
import { XdrError, XdrErrorCode, XdrReader, XdrWriter, compileFile, compileInterface, procedureNamed, XdrgenError, XdrgenErrorCode } from '../src/index.js';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const generatedDir = join(packageDir, 'test', '.generated');

type Module = Record<string, any>;
const modules: Record<string, Module> = {};

async function generate(name: string, path: string): Promise<Module> {
  const { code } = compileFile(path, { runtimeImport: '../../src/index.js' });
  const target = join(generatedDir, `${name}.ts`);
  writeFileSync(target, code);
  return (await import(target)) as Module;
}

beforeAll(async () => {
  mkdirSync(generatedDir, { recursive: true });
  modules.nfs3 = await generate('nfs3', join(packageDir, 'defs', 'nfs3.x'));
  modules.mount3 = await generate('mount3', join(packageDir, 'defs', 'mount3.x'));
  modules.rpcbind = await generate('rpcbind', join(packageDir, 'defs', 'rpcbind.x'));
  modules.bench = await generate('bench', join(packageDir, 'test', 'fixtures', 'bench.xg'));
});

function encodeWith(encode: (writer: XdrWriter, value: any) => void, value: unknown): Buffer {
  const writer = new XdrWriter({ bulkThresholdBytes: 1 << 20 });
  encode(writer, value);
  return writer.finish().toBuffer();
}

function decodeWith<T>(decode: (reader: XdrReader) => T, bytes: Uint8Array): T {
  const reader = new XdrReader(bytes);
  const value = decode(reader);
  reader.assertFinished();
  return value;
}

const fileHandle = { data: Buffer.from([0xaa, 0xbb, 0xcc]) };

describe('NFSv3 (RFC 1813) generated module', () => {
  test('the descriptor table lists the program, version and all 22 procedures', () => {
    const program = modules.nfs3!.NFS_PROGRAM_DESCRIPTOR;
    expect(program.program).toBe(100003);
    expect(program.versions).toHaveLength(1);
    const version = program.versions[0];
    expect(version.version).toBe(3);
    expect(version.procedures.map((procedure: any) => procedure.procedure)).toEqual([...Array(22).keys()]);
    expect(version.procedures[6].name).toBe('NFSPROC3_READ');
    expect(modules.nfs3!.NFSPROC3_COMMIT).toBe(21);
    expect(modules.nfs3!.NFS3ERR_JUKEBOX).toBe(10008);
  });

  test('procedureNamed finds a procedure by name and refuses unknown ones', () => {
    const version = modules.nfs3!.NFS_PROGRAM_NFS_V3_DESCRIPTOR;
    expect(procedureNamed(version, 'NFSPROC3_READ').procedure).toBe(6);
    expect(() => procedureNamed(version, 'NFSPROC3_NOPE' as never)).toThrow(RangeError);
  });

  test('only READ results and WRITE arguments are DDP-eligible', () => {
    const procedures = modules.nfs3!.NFS_PROGRAM_NFS_V3_DESCRIPTOR.procedures as any[];
    const eligible = procedures.filter((procedure) => procedure.ddp.argument || procedure.ddp.result);
    expect(eligible.map((procedure) => [procedure.name, procedure.ddp])).toEqual([
      ['NFSPROC3_READ', { argument: false, result: true }],
      ['NFSPROC3_WRITE', { argument: true, result: false }],
    ]);
  });

  test('READ3args encode to the hand-computed bytes', () => {
    const bytes = encodeWith(modules.nfs3!.encode_READ3args, { file: fileHandle, offset: 0x1_0000_0002n, count: 4096 });
    // fh: length 3, aabbcc + pad; offset: hyper; count: uint.
    expect(bytes.toString('hex')).toBe('00000003' + 'aabbcc00' + '0000000100000002' + '00001000');
  });

  test('a READ3res success carries its data as a DDP-eligible bulk item and round-trips', () => {
    const { encode_READ3res, decode_READ3res, NFS3_OK } = modules.nfs3!;
    const data = Buffer.alloc(5000, 0x5a);
    const value = { status: NFS3_OK, resok: { file_attributes: { attributes_follow: false }, count: 5000, eof: true, data } };
    const writer = new XdrWriter();
    encode_READ3res(writer, value);
    const encoding = writer.finish();
    expect(encoding.inline.toString('hex')).toBe('00000000' + '00000000' + '00001388' + '00000001' + '00001388');
    expect(encoding.bulk).toHaveLength(1);
    expect(encoding.bulk[0]!.data).toBe(data);
    expect(encoding.bulk[0]!.ddpEligible).toBe(true);
    const decoded = decodeWith(decode_READ3res, encoding.toBuffer());
    expect(decoded.status).toBe(0);
    expect(decoded.resok.count).toBe(5000);
    expect(decoded.resok.eof).toBe(true);
    expect(Buffer.compare(decoded.resok.data, data)).toBe(0);
  });

  test('the default arm of a union carries every other status', () => {
    const { encode_READ3res, decode_READ3res, NFS3ERR_STALE } = modules.nfs3!;
    const value = { status: NFS3ERR_STALE, resfail: { file_attributes: { attributes_follow: false } } };
    const bytes = encodeWith(encode_READ3res, value);
    expect(bytes.toString('hex')).toBe('00000046' + '00000000');
    expect(decodeWith(decode_READ3res, bytes)).toEqual(value);
  });

  test('a union discriminant outside its enum is refused with ERR_XDR_BAD_ENUM', () => {
    const bytes = Buffer.from('0000000400000000', 'hex');
    expect(() => decodeWith(modules.nfs3!.decode_READ3res, bytes)).toThrow(expect.objectContaining({ code: XdrErrorCode.BAD_ENUM }));
  });

  test('an enum-switched union without a default refuses unknown values', () => {
    const bytes = Buffer.from('00000007', 'hex');
    expect(() => decodeWith(modules.nfs3!.decode_createhow3, bytes)).toThrow(expect.objectContaining({ code: XdrErrorCode.BAD_ENUM }));
    expect(() => encodeWith(modules.nfs3!.encode_createhow3, { mode: 9 })).toThrow(XdrError);
  });

  test('CREATE3args with two cases sharing one arm round-trip', () => {
    const { encode_CREATE3args, decode_CREATE3args, GUARDED } = modules.nfs3!;
    const unset = { set_it: false };
    const value = {
      where: { dir: fileHandle, name: 'file.txt' },
      how: { mode: GUARDED, obj_attributes: { mode: { set_it: true, mode: 0o644 }, uid: unset, gid: unset, size: unset, atime: { set_it: 0 }, mtime: { set_it: 1 } } },
    };
    const bytes = encodeWith(encode_CREATE3args, value);
    expect(decodeWith(decode_CREATE3args, bytes)).toEqual(value);
  });

  test('a READDIR reply with 20 000 entries decodes iteratively, in order', () => {
    const { encode_READDIR3res, decode_READDIR3res } = modules.nfs3!;
    let entries: any = null;
    for (let index = 19_999; index >= 0; index--) entries = { fileid: BigInt(index), name: `f${index}`, cookie: BigInt(index + 1), nextentry: entries };
    const value = {
      status: 0,
      resok: { dir_attributes: { attributes_follow: false }, cookieverf: Buffer.alloc(8), reply: { entries, eof: true } },
    };
    const decoded = decodeWith(decode_READDIR3res, encodeWith(encode_READDIR3res, value));
    const names: string[] = [];
    for (let node = decoded.resok.reply.entries; node !== null; node = node.nextentry) names.push(node.name);
    expect(names).toHaveLength(20_000);
    expect(names.every((name, index) => name === `f${index}`)).toBe(true);
    expect(decoded.resok.reply.eof).toBe(true);
  });

  test('a file handle longer than NFS3_FHSIZE is refused on decode', () => {
    const bytes = Buffer.alloc(4 + 68);
    bytes.writeUInt32BE(68, 0);
    expect(() => decodeWith(modules.nfs3!.decode_nfs_fh3, bytes)).toThrow(expect.objectContaining({ code: XdrErrorCode.LENGTH_EXCEEDS_MAX }));
  });
});

describe('MOUNT v3 and rpcbind generated modules', () => {
  test('MOUNT exports round-trip through typedef-linked lists', () => {
    const { encode_exports, decode_exports } = modules.mount3!;
    const groups = { gr_name: 'hosts', gr_next: { gr_name: 'lab', gr_next: null } };
    const value = { ex_dir: '/srv/a', ex_groups: groups, ex_next: { ex_dir: '/srv/b', ex_groups: null, ex_next: null } };
    const bytes = encodeWith(encode_exports, value);
    expect(decodeWith(decode_exports, bytes)).toEqual(value);
    expect(modules.mount3!.MOUNT_PROGRAM_DESCRIPTOR.program).toBe(100005);
  });

  test('rpcbind: procedures numbered by another procedure name, bare string results, two programs on 100000', () => {
    const { RPCBPROG_DESCRIPTOR, PMAP_PROG_DESCRIPTOR, encode_rpcb, decode_rpcb } = modules.rpcbind!;
    expect(RPCBPROG_DESCRIPTOR.program).toBe(100000);
    expect(PMAP_PROG_DESCRIPTOR.program).toBe(100000);
    const version4 = RPCBPROG_DESCRIPTOR.versions.find((version: any) => version.version === 4);
    expect(version4.procedures.find((procedure: any) => procedure.name === 'RPCBPROC_BCAST').procedure).toBe(5);
    const getaddr = version4.procedures.find((procedure: any) => procedure.name === 'RPCBPROC_GETADDR');
    const writer = new XdrWriter();
    getaddr.result.encode(writer, '127.0.0.1.8.1');
    expect(writer.finish().toBuffer().toString('hex')).toBe('0000000d' + Buffer.from('127.0.0.1.8.1').toString('hex') + '000000');
    const rpcb = { r_prog: 400000, r_vers: 1, r_netid: 'tcp', r_addr: '0.0.0.0.8.1', r_owner: 'superuser' };
    expect(decodeWith(decode_rpcb, encodeWith(encode_rpcb, rpcb))).toEqual(rpcb);
  });
});

describe('rxgen (.xg) generated module', () => {
  test('opcodes come from =N, #define in an included header, or the previous opcode + 1', () => {
    const table = modules.bench!.BENCH_PACKAGE;
    expect(table.name).toBe('BENCH_');
    expect(table.serverPrefix).toBe('S');
    expect(table.statIndex).toBe(30);
    expect(table.procedures.map((procedure: any) => [procedure.qualifiedName, procedure.opcode, procedure.split])).toEqual([
      ['BENCH_Null', 1, false],
      ['BENCH_Echo', 2, false],
      ['BENCH_EchoName', 3, false],
      ['BENCH_SendBulk', 10, true],
      ['BENCH_ReceiveBulk', 11, true],
      ['BENCH_Stats', 20, false],
    ]);
  });

  test('IN and INOUT parameters form the arguments, OUT and INOUT the results', () => {
    const echoName = modules.bench!.BENCH_PACKAGE.procedures[2];
    expect(echoName.parameters).toEqual([
      { name: 'name', direction: 'IN' },
      { name: 'counter', direction: 'INOUT' },
      { name: 'fixed', direction: 'OUT' },
    ]);
    const argumentBytes = encodeWith(echoName.argument.encode, { name: 'ab', counter: -1 });
    expect(argumentBytes.toString('hex')).toBe('00000002' + '61620000' + 'ffffffff');
    const fixed = Array.from({ length: 64 }, (_, index) => index);
    const resultBytes = encodeWith(echoName.result.encode, { counter: 5, fixed });
    // rxgen sends each char of a char[] vector as a full XDR int.
    expect(resultBytes.length).toBe(4 + 64 * 4);
    expect(decodeWith(echoName.result.decode, resultBytes)).toEqual({ counter: 5, fixed });
  });

  test('afsUUID is built in and takes eleven XDR units', () => {
    const stats = { calls: 3, bytes: 1n << 40n, server: { time_low: 1, time_mid: 2, time_hi_and_version: 3, clock_seq_hi_and_reserved: -1, clock_seq_low: 5, node: [1, 2, 3, 4, 5, 6] } };
    const bytes = encodeWith(modules.bench!.encode_bench_stats, stats);
    expect(bytes.length).toBe(4 + 8 + 44);
    expect(decodeWith(modules.bench!.decode_bench_stats, bytes)).toEqual(stats);
  });

  test('Echo payloads above the DDP threshold are eligible for direct placement', () => {
    expect(modules.bench!.BENCH_PACKAGE.procedures[1].ddp).toEqual({ argument: true, result: true });
  });

  test('OpenAFS interface files installed by libopenafs-dev compile, when present', () => {
    const folders = ['/usr/include/afs', '/usr/share/doc/libopenafs-dev/examples'].filter((folder) => existsSync(folder));
    const files = folders.flatMap((folder) => readdirSync(folder).filter((name) => name.endsWith('.xg')).map((name) => join(folder, name)));
    for (const file of files) {
      const result = compileFile(file, { includeDirectories: folders });
      expect(result.code).toContain('_PACKAGE = {');
    }
  });
});

describe('compiler diagnostics', () => {
  test('a syntax error names the file and line', () => {
    try {
      compileInterface('const A = 1;\nstruct s {\n  int x\n};\n', { fileName: 'broken.x' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(XdrgenError);
      expect((error as XdrgenError).code).toBe(XdrgenErrorCode.SYNTAX);
      expect((error as XdrgenError).message).toMatch(/^broken\.x:4: expected ';'/);
    }
  });

  test('undefined constants and types, and duplicate names, are reported', () => {
    expect(() => compileInterface('typedef opaque x<MISSING>;')).toThrow(expect.objectContaining({ code: XdrgenErrorCode.UNDEFINED }));
    expect(() => compileInterface('struct s { nothing x; };')).toThrow(expect.objectContaining({ code: XdrgenErrorCode.UNDEFINED }));
    expect(() => compileInterface('const A = 1; const A = 2;')).toThrow(expect.objectContaining({ code: XdrgenErrorCode.DUPLICATE }));
    expect(() => compileInterface('package P_\nA() = 1;\nB() = 1;')).toThrow(expect.objectContaining({ code: XdrgenErrorCode.DUPLICATE }));
  });

  test('the generated NFSv3 module is deterministic', () => {
    const first = compileFile(join(packageDir, 'defs', 'nfs3.x')).code;
    expect(compileFile(join(packageDir, 'defs', 'nfs3.x')).code).toBe(first);
  });
});

describe('RFC 4506 constructs', () => {
  let geometry: Module;
  beforeAll(async () => {
    geometry = await generate('constructs', join(packageDir, 'test', 'fixtures', 'constructs.x'));
  });

  test('hex, octal and negative constants, implicit enum values', () => {
    expect([geometry.COUNT, geometry.NEGATIVE, geometry.OCTAL]).toEqual([3, -7, 8]);
    expect([geometry.FIRST, geometry.SECOND, geometry.THIRD, geometry.FOURTH]).toEqual([0, 1, 10, 11]);
    expect(geometry.GEOMETRY).toBe(0x20000001);
  });

  test('a struct with float, double and inline enum and struct types round-trips byte-exactly', () => {
    const value = { x: -1, y: 2, z: -3n, f: 0.5, d: 0.25, colour: 2, nested: { inner: 9 } };
    const bytes = encodeWith(geometry.encode_point, value);
    expect(bytes.toString('hex')).toBe('ffffffff' + '00000002' + 'fffffffffffffffd' + '3f000000' + '3fd0000000000000' + '00000002' + '00000009');
    expect(decodeWith(geometry.decode_point, bytes)).toEqual(value);
    expect(() => encodeWith(geometry.encode_point, { ...value, colour: 3 })).toThrow(expect.objectContaining({ code: XdrErrorCode.BAD_VALUE }));
  });

  test('an int-switched union with a negative case, shared cases and a void default', () => {
    const origin = { x: 0, y: 0, z: 0n, f: 0, d: 0, colour: 1, nested: { inner: 0 } };
    const single = { kind: -7, single: origin };
    expect(decodeWith(geometry.decode_shape, encodeWith(geometry.encode_shape, single))).toEqual(single);
    const triangle = { kind: 1, triangle: [origin, origin, origin] };
    expect(decodeWith(geometry.decode_shape, encodeWith(geometry.encode_shape, triangle))).toEqual(triangle);
    expect(encodeWith(geometry.encode_shape, { kind: 99 }).toString('hex')).toBe('00000063');
    expect(() => encodeWith(geometry.encode_shape, { kind: 0, triangle: [origin] })).toThrow(expect.objectContaining({ code: XdrErrorCode.BAD_VALUE }));
  });

  test('a bool-switched union and a bounded string', () => {
    expect(decodeWith(geometry.decode_flag, encodeWith(geometry.encode_flag, { set: true, label: 'eight888' }))).toEqual({ set: true, label: 'eight888' });
    expect(() => encodeWith(geometry.encode_flag, { set: true, label: 'nine99999' })).toThrow(expect.objectContaining({ code: XdrErrorCode.BAD_VALUE }));
  });

  test('recursion that is not a list (a tree) is bounded by the reader depth', () => {
    const leaf = (value: number) => ({ left: null, value, right: null });
    const tree = { left: leaf(1), value: 2, right: { left: leaf(3), value: 4, right: null } };
    expect(decodeWith(geometry.decode_tree, encodeWith(geometry.encode_tree, tree))).toEqual(tree);
    let deep: any = leaf(0);
    for (let level = 0; level < 100; level++) deep = { left: deep, value: level, right: null };
    const bytes = encodeWith(geometry.encode_tree, deep);
    expect(() => geometry.decode_tree(new XdrReader(bytes))).toThrow(expect.objectContaining({ code: XdrErrorCode.DEPTH_EXCEEDED }));
  });

  test('a procedure with two arguments takes a tuple', () => {
    const area = geometry.GEOMETRY_GEOMETRY_V1_DESCRIPTOR.procedures[0];
    const origin = { x: 0, y: 0, z: 0n, f: 0, d: 0, colour: 1, nested: { inner: 0 } };
    const bytes = encodeWith(area.argument.encode, [origin, 5]);
    expect(decodeWith(area.argument.decode, bytes)).toEqual([origin, 5]);
  });
});
