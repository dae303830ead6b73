import { describe, expect, it } from 'vitest';
import {
  decodeConnectPrivateData,
  defaultSvcRdmaOptions,
  encodeConnectPrivateData,
  fillSvcRdmaOptions,
  grantCredits,
  SvcRdmaError,
} from '../src/index.js';

describe('the credit grant', () => {
  it('grants what is asked, never 0 and never more than the Receives posted', () => {
    expect(grantCredits(0, 64)).toBe(1);
    expect(grantCredits(8, 64)).toBe(8);
    expect(grantCredits(64, 64)).toBe(64);
    expect(grantCredits(0xffffffff, 64)).toBe(64);
  });

  it('refuses to compute a grant for a connection with no Receives posted', () => {
    expect(() => grantCredits(8, 0)).toThrow(/posted receives/);
  });
});

describe('options are filled from defaults and validated by field', () => {
  it('defaults to Linux svcrdma: 64 credits, 4 KiB receives, port 20049', () => {
    expect(fillSvcRdmaOptions()).toEqual(defaultSvcRdmaOptions);
    expect(defaultSvcRdmaOptions).toMatchObject({ credits: 64, receiveInlineBytes: 4096, port: 20049 });
  });

  it('derives the Send Queue depth and the send-context bound from the credits', () => {
    expect(fillSvcRdmaOptions({ credits: 16 })).toMatchObject({ sendQueueDepth: 64, sendContextsMax: 32 });
  });

  it('names the field that is out of range', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ credits: 3 }, /option credits must be an integer in \[4, 16384\]/],
      [{ credits: 1.5 }, /option credits/],
      [{ receiveInlineBytes: 70000 }, /option receiveInlineBytes/],
      [{ receiveInlineBytes: 5000 }, /multiple of 1024/],
      [{ port: 0 }, /option port/],
      [{ sendQueueDepth: 8 }, /option sendQueueDepth must be an integer in \[64,/],
      [{ address: '' }, /option address/],
      [{ receiveBurstWindowMs: 1001 }, /option receiveBurstWindowMs must be an integer in \[0, 1000\]/],
    ];
    for (const [options, message] of cases) {
      expect(() => fillSvcRdmaOptions(options)).toThrow(message);
      expect(() => fillSvcRdmaOptions(options)).toThrow(SvcRdmaError);
    }
  });
});

describe('RFC 8797 connection private data', () => {
  it('round-trips sizes and the remote-invalidation flag', () => {
    const data = { sendBytes: 4096, receiveBytes: 65536, remoteInvalidate: true };
    const bytes = encodeConnectPrivateData(data);
    expect(bytes.toString('hex')).toBe('f6ab0e1801010' + '33f');
    expect(decodeConnectPrivateData(bytes)).toEqual(data);
  });

  it('falls back to the RFC 8166 1 KiB default for absent, short or foreign private data', () => {
    const fallback = { sendBytes: 1024, receiveBytes: 1024, remoteInvalidate: false };
    expect(decodeConnectPrivateData(null)).toEqual(fallback);
    expect(decodeConnectPrivateData(Buffer.from('f6ab0e18', 'hex'))).toEqual(fallback);
    expect(decodeConnectPrivateData(Buffer.from('deadbeef01000303', 'hex'))).toEqual(fallback);
    expect(decodeConnectPrivateData(Buffer.from('f6ab0e1802000303', 'hex'))).toEqual(fallback);
  });

  it('reads only the first 8 bytes of zero-padded private data', () => {
    const padded = Buffer.concat([encodeConnectPrivateData({ sendBytes: 1024, receiveBytes: 2048, remoteInvalidate: false }), Buffer.alloc(48)]);
    expect(decodeConnectPrivateData(padded)).toEqual({ sendBytes: 1024, receiveBytes: 2048, remoteInvalidate: false });
  });

  it('refuses sizes it cannot encode', () => {
    expect(() => encodeConnectPrivateData({ sendBytes: 1000, receiveBytes: 4096, remoteInvalidate: false })).toThrow(/sendBytes/);
    expect(() => encodeConnectPrivateData({ sendBytes: 4096, receiveBytes: 512 * 1024, remoteInvalidate: false })).toThrow(/receiveBytes/);
  });
});
