import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../src/index.js';
import * as nfs from '../src/protocol/nfs3.generated.js';
import { FileExtents, extentBytes } from '../src/store/file-extents.js';

const MiB = 1 << 20;
const unset = { set_it: false } as const;
const noAttributes = { mode: unset, uid: unset, gid: unset, size: unset, atime: { set_it: nfs.DONT_CHANGE }, mtime: { set_it: nfs.DONT_CHANGE } } as const;

describe('FileExtents (the memory store file data)', () => {
  it('takes 1 MiB WRITEs at 1 MiB offsets into one extent each, and lends them to READs', () => {
    const file = new FileExtents();
    const source = randomBytes(4 * MiB);
    for (let offset = 0; offset < source.length; offset += MiB) file.write(offset, source.subarray(offset, offset + MiB));
    expect(file.allocatedBytes).toBe(4 * MiB);
    const read = file.read(2 * MiB, 3 * MiB);
    expect(read.equals(source.subarray(2 * MiB, 3 * MiB))).toBe(true);
    // Lent: a later write goes to a copy, the READ's bytes stay as they were answered.
    file.write(2 * MiB + 10, Buffer.from('overwritten'));
    expect(read.equals(source.subarray(2 * MiB, 3 * MiB))).toBe(true);
    expect(file.read(2 * MiB, 2 * MiB + 21).subarray(10).toString()).toBe('overwritten');
    expect(file.allocatedBytes).toBe(4 * MiB);
  });

  it('answers what a flat buffer would for random writes, reads and truncations', () => {
    const file = new FileExtents();
    let model = Buffer.alloc(0);
    let size = 0;
    const answered: [Buffer, Buffer][] = [];
    const limit = 3 * extentBytes + 5000;
    let seed = 7;
    const next = (bound: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % bound;
    };
    for (let step = 0; step < 400; step++) {
      const choice = next(10);
      const offset = next(limit);
      if (choice < 5) {
        const data = randomBytes(Math.min(next(choice === 0 ? 2 * extentBytes : 9000), limit - offset));
        file.write(offset, data);
        if (offset + data.length > model.length) model = Buffer.concat([model, Buffer.alloc(offset + data.length - model.length)]);
        data.copy(model, offset);
        size = Math.max(size, offset + data.length);
      } else if (choice < 9) {
        const start = Math.min(offset, size);
        const end = Math.min(start + next(2 * extentBytes), size);
        const data = file.read(start, end);
        expect(data.equals(model.subarray(start, end))).toBe(true);
        answered.push([data, Buffer.from(model.subarray(start, end))]);
      } else {
        const newSize = next(size + 1);
        file.truncate(newSize);
        model.fill(0, newSize);
        size = newSize;
      }
    }
    // Every READ's answer kept its bytes through the writes and truncations after it.
    for (const [data, copy] of answered) expect(data.equals(copy)).toBe(true);
    expect(file.read(0, limit).equals(Buffer.concat([model, Buffer.alloc(Math.max(0, limit - model.length))]).subarray(0, limit))).toBe(true);
  });

  it('keeps holes unallocated and reading as zeros', () => {
    const file = new FileExtents();
    file.write(3 * MiB + 100, Buffer.from('tail'));
    expect(file.allocatedBytes).toBe(4096);
    expect(file.growthOf(0, 1)).toBe(4096);
    const whole = file.read(0, 3 * MiB + 104);
    expect(whole.subarray(0, 3 * MiB + 100).equals(Buffer.alloc(3 * MiB + 100))).toBe(true);
    expect(whole.subarray(3 * MiB + 100).toString()).toBe('tail');
  });

  it('reads zeros past a truncation, also where a READ still holds the old bytes', () => {
    const file = new FileExtents();
    file.write(0, Buffer.alloc(8192, 0x61));
    const held = file.read(0, 8192);
    file.truncate(100);
    expect(held.equals(Buffer.alloc(8192, 0x61))).toBe(true);
    expect(file.read(0, 8192).equals(Buffer.concat([Buffer.alloc(100, 0x61), Buffer.alloc(8092)]))).toBe(true);
    file.truncate(0);
    expect(file.allocatedBytes).toBe(0);
  });
});

describe('MemoryStore data in extents', () => {
  it('refuses a WRITE past maxBytes with NOSPC and changes nothing', () => {
    const store = new MemoryStore({ maxBytes: 2 * MiB });
    const owner = { uid: 0, gid: 0 };
    const { object } = store.create(store.rootHandle, 'f', { kind: 'file', mode: 'unchecked', attributes: noAttributes }, owner) as { object: { handle: Buffer } };
    store.write(object.handle, 0, Buffer.alloc(MiB, 1), 'unstable');
    expect(() => store.write(object.handle, MiB - 10, Buffer.alloc(MiB + 20, 2), 'unstable')).toThrow(expect.objectContaining({ status: nfs.NFS3ERR_NOSPC }));
    const attributes = store.getAttributes(object.handle) as nfs.fattr3;
    expect([attributes.size, attributes.used]).toEqual([BigInt(MiB), BigInt(MiB)]);
  });

  it('answers a READ that a WRITE of the same bytes follows with the bytes read', async () => {
    const store = new MemoryStore();
    const { object } = store.create(store.rootHandle, 'f', { kind: 'file', mode: 'unchecked', attributes: noAttributes }, { uid: 0, gid: 0 }) as { object: { handle: Buffer } };
    store.write(object.handle, 0, Buffer.alloc(MiB, 1), 'unstable');
    const { data } = await store.read(object.handle, 0, MiB);
    store.write(object.handle, 0, Buffer.alloc(MiB, 2), 'unstable');
    expect(data.equals(Buffer.alloc(MiB, 1))).toBe(true);
    expect((await store.read(object.handle, 0, MiB)).data.equals(Buffer.alloc(MiB, 2))).toBe(true);
  });
});
