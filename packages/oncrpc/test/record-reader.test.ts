/** Record marking (RFC 5531 §11): reassembly across fragments and chunks, and the bounds. */
import { describe, expect, test } from 'vitest';
import { OncRpcErrorCode, RecordReader, recordMark } from '../src/index.js';

const limits = { maxRecordBytes: 64, maxFragmentsPerRecord: 4 };

function fragment(payload: string, last: boolean): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(((last ? 0x8000_0000 : 0) | payload.length) >>> 0);
  return Buffer.concat([header, Buffer.from(payload)]);
}

function collector(stopAfterEach = false): { records: string[]; reader: RecordReader } {
  const records: string[] = [];
  const reader = new RecordReader(limits, {
    onRecord(record) {
      records.push(record.toString());
      return !stopAfterEach;
    },
  });
  return { records, reader };
}

describe('reassembly', () => {
  test('a record split into fragments is delivered whole, once, after its last fragment', () => {
    const { records, reader } = collector();
    reader.push(Buffer.concat([fragment('hel', false), fragment('lo ', false), fragment('world', true), fragment('next', true)]));
    expect(records).toEqual(['hello world', 'next']);
    expect(reader.midRecord).toBe(false);
  });

  test('the same stream fed one byte at a time gives the same records', () => {
    const { records, reader } = collector();
    const stream = Buffer.concat([fragment('abc', false), fragment('', false), fragment('defg', true), fragment('h', true)]);
    for (const byte of stream) reader.push(Buffer.from([byte]));
    expect(records).toEqual(['abcdefg', 'h']);
  });

  test('a single-fragment record in one chunk is a view of that chunk', () => {
    let delivered: Buffer | null = null;
    const reader = new RecordReader(limits, { onRecord: (record) => ((delivered = record), true) });
    const chunk = fragment('zero-copy', true);
    reader.push(chunk);
    expect(delivered!.buffer).toBe(chunk.buffer);
  });

  test('a stream that stops inside a record is reported as mid-record', () => {
    const { records, reader } = collector();
    reader.push(fragment('partial', true).subarray(0, 6));
    expect(records).toEqual([]);
    expect(reader.midRecord).toBe(true);
  });

  test('recordMark sets the last-fragment bit and the length', () => {
    expect(recordMark(0x1234).toString('hex')).toBe('80001234');
  });
});

describe('bounds', () => {
  test('a record over maxRecordBytes is refused as soon as its header says so', () => {
    const { reader } = collector();
    expect(() => reader.push(fragment('x'.repeat(65), true).subarray(0, 4))).toThrow(
      expect.objectContaining({ code: OncRpcErrorCode.RECORD_TOO_LARGE }),
    );
  });

  test('fragments that add up past maxRecordBytes are refused', () => {
    const { reader } = collector();
    reader.push(fragment('x'.repeat(40), false));
    expect(() => reader.push(fragment('y'.repeat(40), true))).toThrow(expect.objectContaining({ code: OncRpcErrorCode.RECORD_TOO_LARGE }));
  });

  test('more than maxFragmentsPerRecord fragments is a bad record', () => {
    const { reader } = collector();
    const many = Buffer.concat(Array.from({ length: 5 }, () => fragment('a', false)));
    expect(() => reader.push(many)).toThrow(expect.objectContaining({ code: OncRpcErrorCode.BAD_RECORD }));
  });

  test('a sink that stops delivery gets the held records only after resume', () => {
    const { records, reader } = collector(true);
    reader.push(Buffer.concat([fragment('one', true), fragment('two', true), fragment('three', true)]));
    expect(records).toEqual(['one']);
    expect(reader.stopped).toBe(true);
    reader.push(fragment('four', true));
    expect(records).toEqual(['one']);
    reader.resume();
    expect(records).toEqual(['one', 'two']);
    reader.resume();
    reader.resume();
    reader.resume();
    expect(records).toEqual(['one', 'two', 'three', 'four']);
  });
});
