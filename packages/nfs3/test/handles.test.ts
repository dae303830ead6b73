import { createHash, createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HandleCodec, StoreKind } from '../src/index.js';
import { nfs } from './helpers.js';

const identity = (fileId: number) => ({ device: 0xfedc_ba98_7654_3210n, fileId: BigInt(fileId), generation: 7 });

describe('handle codec: a MAC computed once per handle, never trusted without one', () => {
  it('decodes what it encoded, and the same identity gets the same bytes again', () => {
    const codec = new HandleCodec(StoreKind.MEMORY, randomBytes(32));
    const handle = codec.encode(identity(42));
    expect(codec.decode(handle)).toEqual(identity(42));
    expect(codec.encode(identity(42)).equals(handle)).toBe(true);
    // Another codec with the same secret computes the same MAC (handles survive a restart).
    const secret = randomBytes(32);
    expect(new HandleCodec(StoreKind.DIRECTORY, secret).encode(identity(5)).equals(new HandleCodec(StoreKind.DIRECTORY, secret).encode(identity(5)))).toBe(true);
  });

  it('refuses every single-bit change of a remembered handle: BADHANDLE, the original still decodes', () => {
    const codec = new HandleCodec(StoreKind.MEMORY, randomBytes(32));
    const handle = codec.encode(identity(1));
    expect(codec.decode(handle).fileId).toBe(1n);
    for (let bit = 0; bit < handle.length * 8; bit += 1) {
      const changed = Buffer.from(handle);
      changed[bit >> 3]! ^= 1 << (bit & 7);
      expect(() => codec.decode(changed), `bit ${bit}`).toThrow(expect.objectContaining({ status: nfs.NFS3ERR_BADHANDLE }));
    }
    expect(codec.decode(handle).fileId).toBe(1n);
  });

  it('verifies a handle it did not make in this life (a restart) once, and one made under another secret never', () => {
    const secret = randomBytes(32);
    const handle = new HandleCodec(StoreKind.DIRECTORY, secret).encode(identity(9));
    const restarted = new HandleCodec(StoreKind.DIRECTORY, secret);
    // Decoded from a view into a larger buffer that is reused afterwards: the remembered copy is not affected.
    const received = Buffer.alloc(64);
    handle.copy(received, 16);
    expect(restarted.decode(received.subarray(16, 48))).toEqual(identity(9));
    received.fill(0);
    expect(restarted.decode(handle)).toEqual(identity(9));
    expect(() => new HandleCodec(StoreKind.DIRECTORY, randomBytes(32)).decode(handle)).toThrow(expect.objectContaining({ status: nfs.NFS3ERR_BADHANDLE }));
  });

  it('the MAC is SHA-256 over the secret then the first 24 bytes (layout 2); a layout-1 (HMAC) handle is BADHANDLE', () => {
    const secret = randomBytes(32);
    const handle = new HandleCodec(StoreKind.DIRECTORY, secret).encode(identity(77));
    expect(handle[0]).toBe(2);
    expect(handle.subarray(24).equals(createHash('sha256').update(secret).update(handle.subarray(0, 24)).digest().subarray(0, 8))).toBe(true);
    const layoutOne = Buffer.from(handle);
    layoutOne[0] = 1;
    createHmac('sha256', secret).update(layoutOne.subarray(0, 24)).digest().copy(layoutOne, 24, 0, 8);
    expect(() => new HandleCodec(StoreKind.DIRECTORY, secret).decode(layoutOne)).toThrow(expect.objectContaining({ status: nfs.NFS3ERR_BADHANDLE }));
  });

  it('keeps working past its bound of remembered handles (the table starts over)', () => {
    const codec = new HandleCodec(StoreKind.MEMORY, randomBytes(32), 100);
    const first = codec.encode(identity(0));
    const handles = Array.from({ length: 250 }, (_, index) => codec.encode(identity(index + 1)));
    expect(codec.decode(first).fileId).toBe(0n);
    expect(codec.decode(handles[0]!).fileId).toBe(1n);
    expect(codec.decode(handles[249]!).fileId).toBe(250n);
    expect(codec.encode(identity(0)).equals(first)).toBe(true);
    const forged = Buffer.from(handles[123]!);
    forged[31]! ^= 0x80;
    expect(() => codec.decode(forged)).toThrow(expect.objectContaining({ status: nfs.NFS3ERR_BADHANDLE }));
  });
});
