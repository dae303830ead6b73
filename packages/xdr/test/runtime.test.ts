/** The XDR runtime: byte-exact encodings, round trips, bounds, and hostile input. */
import { describe, expect, test } from 'vitest';
import {
  XdrError,
  XdrErrorCode,
  XdrReader,
  XdrWriter,
  decodeWhole,
  xdrOptional,
  xdrString,
  xdrStruct,
  xdrUint,
  xdrVariableArray,
  xdrVariableOpaque,
} from '../src/index.js';

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function encode(write: (writer: XdrWriter) => void, options = {}): Buffer {
  const writer = new XdrWriter(options);
  write(writer);
  return writer.finish().toBuffer();
}

function expectXdrError(run: () => unknown, code: string): XdrError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(XdrError);
    expect((error as XdrError).code).toBe(code);
    return error as XdrError;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

describe('encoding primitives (RFC 4506 §4)', () => {
  test('integers, hypers, bool, float and double are big-endian units', () => {
    const bytes = encode((writer) => {
      writer.writeInt(-2);
      writer.writeUint(0x12345678);
      writer.writeHyper(-1n);
      writer.writeUhyper(0x0102030405060708n);
      writer.writeBool(true);
      writer.writeFloat(1.5);
      writer.writeDouble(1.5);
    });
    expect(hex(bytes)).toBe(
      'fffffffe' + '12345678' + 'ffffffffffffffff' + '0102030405060708' + '00000001' + '3fc00000' + '3ff8000000000000',
    );
  });

  test('opaque and string data are length-prefixed and zero-padded to four bytes', () => {
    const bytes = encode((writer) => {
      writer.writeString('abcde', 10);
      writer.writeVariableOpaque(Buffer.from([1, 2, 3]));
      writer.writeFixedOpaque(Buffer.from([1, 2, 3, 4, 5]), 5);
      writer.writeVariableOpaque(Buffer.alloc(0));
    });
    expect(hex(bytes)).toBe('00000005' + '6162636465000000' + '00000003' + '01020300' + '0102030405000000' + '00000000');
  });

  test('every primitive decodes back to the value written', () => {
    const bytes = encode((writer) => {
      writer.writeInt(-2147483648);
      writer.writeUint(4294967295);
      writer.writeHyper(-9223372036854775808n);
      writer.writeUhyper(18446744073709551615n);
      writer.writeBool(false);
      writer.writeDouble(-0.25);
      writer.writeString('héllo', 16);
      writer.writeVariableOpaque(Buffer.from('bulk'), 8);
    });
    const reader = new XdrReader(bytes);
    expect(reader.readInt()).toBe(-2147483648);
    expect(reader.readUint()).toBe(4294967295);
    expect(reader.readHyper()).toBe(-9223372036854775808n);
    expect(reader.readUhyper()).toBe(18446744073709551615n);
    expect(reader.readBool()).toBe(false);
    expect(reader.readDouble()).toBe(-0.25);
    expect(reader.readString(16)).toBe('héllo');
    expect(reader.readVariableOpaque(8).toString()).toBe('bulk');
    reader.assertFinished();
  });

  test('values that do not fit their type are refused with ERR_XDR_BAD_VALUE', () => {
    const writer = new XdrWriter();
    expectXdrError(() => writer.writeInt(2 ** 31), XdrErrorCode.BAD_VALUE);
    expectXdrError(() => writer.writeUint(-1), XdrErrorCode.BAD_VALUE);
    expectXdrError(() => writer.writeUint(1.5), XdrErrorCode.BAD_VALUE);
    expectXdrError(() => writer.writeUhyper(-1n), XdrErrorCode.BAD_VALUE);
    expectXdrError(() => writer.writeHyper(2n ** 63n), XdrErrorCode.BAD_VALUE);
    expectXdrError(() => writer.writeString('toolong', 3), XdrErrorCode.BAD_VALUE);
    expectXdrError(() => writer.writeVariableOpaque(Buffer.alloc(5), 4), XdrErrorCode.BAD_VALUE);
    expectXdrError(() => writer.writeFixedOpaque(Buffer.alloc(3), 4), XdrErrorCode.BAD_VALUE);
    expectXdrError(() => writer.writeEnum(7, new Set([0, 1]), 'colour'), XdrErrorCode.BAD_VALUE);
    expect(writer.byteLength).toBe(0);
  });
});

describe('string encodings', () => {
  test('latin1 strings carry arbitrary bytes losslessly (POSIX file names)', () => {
    const name = Buffer.from([0x66, 0xff, 0xfe, 0x80]);
    const wire = Buffer.concat([Buffer.from('00000004', 'hex'), name]);
    const decoded = new XdrReader(wire, { stringEncoding: 'latin1' }).readString(8);
    expect(decoded).toHaveLength(4);
    const writer = new XdrWriter({ stringEncoding: 'latin1' });
    writer.writeString(decoded, 8);
    expect(writer.finish().toBuffer().equals(wire)).toBe(true);
    expect(new XdrReader(wire).readString(8)).toContain('\ufffd');
  });
});

describe('writer bounds', () => {
  test('a growable writer grows past its initial size up to maxBytes, then refuses', () => {
    const writer = new XdrWriter({ initialBytes: 8, maxBytes: 16 });
    for (let index = 0; index < 4; index++) writer.writeUint(index);
    expect(writer.byteLength).toBe(16);
    expectXdrError(() => writer.writeUint(4), XdrErrorCode.ENCODE_OVERFLOW);
    expect(hex(writer.finish().toBuffer())).toBe('00000000000000010000000200000003');
  });

  test('a writer over a caller buffer fills it in place and never grows', () => {
    const target = Buffer.alloc(8);
    const writer = new XdrWriter({ buffer: target });
    writer.writeUint(0xaabbccdd);
    writer.writeInt(1);
    expectXdrError(() => writer.writeInt(2), XdrErrorCode.ENCODE_OVERFLOW);
    const encoding = writer.finish();
    expect(encoding.inline.buffer).toBe(target.buffer);
    expect(hex(target)).toBe('aabbccdd00000001');
  });

  test('invalid options name the field', () => {
    expect(() => new XdrWriter({ maxBytes: -1 })).toThrow(/maxBytes/);
    expect(() => new XdrWriter({ bulkThresholdBytes: 1.5 })).toThrow(/bulkThresholdBytes/);
  });
});

describe('bulk data stays by reference', () => {
  test('an opaque at the bulk threshold is referenced, not copied, and flattens to the same bytes', () => {
    const payload = Buffer.alloc(4097, 7);
    const writer = new XdrWriter({ bulkThresholdBytes: 4096 });
    writer.writeUint(1);
    writer.writeVariableOpaque(payload, 0xffffffff, true);
    writer.writeUint(2);
    const encoding = writer.finish();
    expect(encoding.inline.length).toBe(12);
    expect(encoding.bulk).toHaveLength(1);
    expect(encoding.bulk[0]!.data).toBe(payload);
    expect(encoding.bulk[0]!.position).toBe(8);
    expect(encoding.bulk[0]!.padding).toBe(3);
    expect(encoding.bulk[0]!.ddpEligible).toBe(true);
    expect(encoding.byteLength).toBe(12 + 4097 + 3);
    const chunks = encoding.toChunks();
    expect(chunks[1]).toBe(payload);
    const flat = encoding.toBuffer();
    const reader = new XdrReader(flat);
    expect(reader.readUint()).toBe(1);
    expect(reader.readVariableOpaque().equals(payload)).toBe(true);
    expect(reader.readUint()).toBe(2);
    reader.assertFinished();
  });

  test('bulk bytes count against maxBytes', () => {
    const writer = new XdrWriter({ bulkThresholdBytes: 16, maxBytes: 64 });
    expectXdrError(() => writer.writeVariableOpaque(Buffer.alloc(64)), XdrErrorCode.ENCODE_OVERFLOW);
  });

  test('decoded opaque data is a view of the input, not a copy', () => {
    const bytes = encode((writer) => writer.writeVariableOpaque(Buffer.from('zero-copy')));
    const view = new XdrReader(bytes).readVariableOpaque();
    expect(view.buffer).toBe(bytes.buffer);
    bytes[4] = 'Z'.charCodeAt(0);
    expect(view.toString()).toBe('Zero-copy');
  });

  test('a read chunk supplies the opaque data found at its XDR position', () => {
    // Inline stream: int 5, opaque length 6 (data moved out), int 9.
    const inline = encode((writer) => {
      writer.writeInt(5);
      writer.writeUint(6);
      writer.writeInt(9);
    });
    const chunk = Buffer.from('chunk!');
    const reader = new XdrReader(inline, { readChunks: [{ position: 8, data: chunk }] });
    expect(reader.readInt()).toBe(5);
    expect(reader.readVariableOpaque()).toBe(chunk);
    expect(reader.readInt()).toBe(9);
    reader.assertFinished();
    const mismatched = new XdrReader(inline, { readChunks: [{ position: 8, data: Buffer.from('short') }] });
    mismatched.readInt();
    expectXdrError(() => mismatched.readVariableOpaque(), XdrErrorCode.BAD_CHUNK);
  });
});

describe('hostile input is rejected with typed errors', () => {
  test('every truncation of a valid message fails with ERR_XDR_SHORT_BUFFER', () => {
    const bytes = encode((writer) => {
      writer.writeHyper(1n);
      writer.writeString('name', 8);
      writer.writeVariableOpaque(Buffer.from([9, 9, 9, 9, 9]));
    });
    for (let length = 0; length < bytes.length; length++) {
      const reader = new XdrReader(bytes.subarray(0, length));
      expectXdrError(() => {
        reader.readHyper();
        reader.readString(8);
        reader.readVariableOpaque();
      }, XdrErrorCode.SHORT_BUFFER);
    }
  });

  test('lengths above the declared maximum fail before any data is read', () => {
    const bytes = Buffer.from('00000009' + '61'.repeat(12), 'hex');
    expectXdrError(() => new XdrReader(bytes).readString(8), XdrErrorCode.LENGTH_EXCEEDS_MAX);
    expectXdrError(() => new XdrReader(bytes).readVariableOpaque(8), XdrErrorCode.LENGTH_EXCEEDS_MAX);
    expectXdrError(() => new XdrReader(bytes).readArrayLength(8), XdrErrorCode.LENGTH_EXCEEDS_MAX);
  });

  test('a huge array count is refused without allocating', () => {
    const bytes = Buffer.from('ffffffff00000001', 'hex');
    const codec = xdrVariableArray(xdrUint);
    const error = expectXdrError(() => codec.decode(new XdrReader(bytes)), XdrErrorCode.SHORT_BUFFER);
    expect(error.offset).toBe(0);
    expectXdrError(() => new XdrReader(Buffer.from('fffffff0', 'hex')).readVariableOpaque(), XdrErrorCode.SHORT_BUFFER);
  });

  test('non-zero pad bytes, bad booleans and unknown enum values are refused', () => {
    expectXdrError(() => new XdrReader(Buffer.from('0000000161000100', 'hex')).readVariableOpaque(), XdrErrorCode.BAD_PADDING);
    expectXdrError(() => new XdrReader(Buffer.from('0000000161620001', 'hex')).readString(), XdrErrorCode.BAD_PADDING);
    expectXdrError(() => new XdrReader(Buffer.from('00000002', 'hex')).readBool(), XdrErrorCode.BAD_BOOL);
    expectXdrError(() => new XdrReader(Buffer.from('00000003', 'hex')).readEnum(new Set([0, 1, 2]), 'e'), XdrErrorCode.BAD_ENUM);
  });

  test('trailing bytes after a whole message are refused', () => {
    expectXdrError(() => decodeWhole(xdrUint, new XdrReader(Buffer.alloc(8))), XdrErrorCode.TRAILING_BYTES);
  });

  test('deeply nested optional data stops at maxDepth', () => {
    interface Node {
      next: Node | null;
    }
    const node: { codec?: ReturnType<typeof xdrStruct<Node>> } = {};
    const lazy = { name: 'node', encode: () => {}, decode: (reader: XdrReader) => node.codec!.decode(reader) };
    node.codec = xdrStruct<Node>('node', { next: xdrOptional(lazy) });
    const bytes = Buffer.alloc(4 * 100);
    for (let index = 0; index < 99; index++) bytes.writeUInt32BE(1, index * 4);
    expectXdrError(() => node.codec!.decode(new XdrReader(bytes, { maxDepth: 50 })), XdrErrorCode.DEPTH_EXCEEDED);
    expect(node.codec.decode(new XdrReader(bytes, { maxDepth: 100 }))).toBeTruthy();
  });
});

describe('composed codecs for hand-written definitions', () => {
  test('a struct codec encodes fields in key order and round-trips', () => {
    const codec = xdrStruct<{ id: number; name: string; blob: Uint8Array }>('record', {
      id: xdrUint,
      name: xdrString(16),
      blob: xdrVariableOpaque(16),
    });
    const writer = new XdrWriter();
    codec.encode(writer, { id: 7, name: 'ab', blob: Buffer.from([1]) });
    const bytes = writer.finish().toBuffer();
    expect(hex(bytes)).toBe('00000007' + '00000002' + '61620000' + '00000001' + '01000000');
    const decoded = decodeWhole(codec, new XdrReader(bytes));
    expect(decoded.id).toBe(7);
    expect(decoded.name).toBe('ab');
    expect([...decoded.blob]).toEqual([1]);
  });
});
