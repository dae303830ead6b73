/**
 * Calls whose data the server pulls with RDMA Read: a long call (the whole RPC
 * message in a position-zero Read chunk) and a data item (an opaque argument
 * in a Read chunk at its XDR position), through the real oncrpc Dispatcher.
 */
import { Dispatcher, authNone, defineProcedure, readReplyBody, writeCallHeader } from '@roce-rpc/oncrpc';
import { XdrReader, XdrWriter, xdrString, xdrUint, xdrVariableOpaque } from '@roce-rpc/xdr';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeReplyHeader, encodeCallHeader, RdmaProcedure, type CallHeaderFields, type ReadChunk } from '../src/index.js';
import { ServicePool } from '../src/transport/service_pool.js';
import { RdmaTransport } from '../src/transport/transport.js';
import { LoopbackDevice } from './helpers/loopback_device.js';

const PROGRAM = 0x2000_0201;
const dispatcher = new Dispatcher().addVersion(
  PROGRAM,
  {
    name: 'READCHUNKS',
    version: 1,
    procedures: [
      defineProcedure('LENGTH', 1, xdrString(4096), xdrUint),
      defineProcedure('SUM', 2, xdrVariableOpaque(1 << 20, true), xdrUint),
      defineProcedure('ECHO', 3, xdrVariableOpaque(1 << 20, true), xdrVariableOpaque(1 << 20)),
    ],
  },
  {
    LENGTH: (text: string) => text.length,
    SUM: (data: Uint8Array) => data.reduce((sum, byte) => (sum + byte) >>> 0, 0),
    // Answers with the pulled bytes themselves (a view of the Read sink), as an echo service would.
    ECHO: (data: Uint8Array) => data,
  },
);

const settle = async () => {
  for (let turn = 0; turn < 4; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
};

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function serve() {
  const device = new LoopbackDevice();
  const pool = new ServicePool(2, (error) => {
    throw error;
  });
  const transport = new RdmaTransport(device, device, dispatcher, pool, {
    credits: 8,
    receiveInlineBytes: 4096,
    sendQueueDepth: 32,
    sendContextsMax: 16,
    peerReceiveBytes: 4096,
  });
  device.onReleasePending = () => transport.onReleasePending();
  transport.start();
  cleanups.push(async () => {
    await pool.close();
    device.close();
  });
  const deliver = async (message: Buffer) => {
    const slot = device.postedReceives.shift()!;
    transport.ring.buffer.set(message, slot * transport.ring.slotBytes);
    transport.onReceive(slot, message.length);
    await settle();
  };
  return { device, transport, deliver };
}

function rpcCall(xid: number, procedure: number, encode: (writer: XdrWriter) => void): Buffer {
  const writer = new XdrWriter({ bulkThresholdBytes: 1 << 30 });
  writeCallHeader(writer, { xid, program: PROGRAM, version: 1, procedure, credential: authNone, verifier: authNone });
  encode(writer);
  return writer.finish().toBuffer();
}

/** Places `bytes` in the requester's memory as `segmentCount` segments and names them as one chunk. */
function exposeChunk(device: LoopbackDevice, handle: number, position: number, bytes: Buffer, segmentCount: number): ReadChunk {
  const base = 0x7f00_0000_0000n + BigInt(handle) * 0x10_0000n;
  device.remoteMemory.set(handle, { base, bytes });
  const size = Math.ceil(bytes.length / segmentCount);
  const segments = [];
  for (let start = 0; start < bytes.length; start += size) {
    segments.push({ handle, length: Math.min(size, bytes.length - start), offset: base + BigInt(start) });
  }
  return { position, length: bytes.length, segments };
}

const callFields = (xid: number): CallHeaderFields => ({
  xid,
  credits: 8,
  procedure: RdmaProcedure.MSG,
  callChunk: null,
  readChunks: [],
  writeList: [],
  replyChunk: null,
});

function resultOf(send: Buffer): number {
  const header = decodeReplyHeader(send);
  if (header.kind !== 'reply') throw new Error(`RDMA_ERROR ${header.errorCode}`);
  const reader = new XdrReader(send, { offset: header.headerBytes });
  const xid = reader.readUint();
  reader.readUint();
  readReplyBody(reader, xid);
  return reader.readUint();
}

describe('calls pulled with RDMA Read', () => {
  it('serves a long call carried whole in a position-zero Read chunk (RDMA_NOMSG)', async () => {
    const { device, transport, deliver } = serve();
    const text = 'x'.repeat(3000);
    const message = rpcCall(41, 1, (writer) => writer.writeString(text, 4096));
    const callChunk = exposeChunk(device, 0x50, 0, message, 3);
    await deliver(encodeCallHeader({ ...callFields(41), procedure: RdmaProcedure.NOMSG, callChunk }));
    expect(resultOf(device.replies[0]!.send)).toBe(3000);
    expect(transport.metrics.readBytes).toBe(message.length);
  });

  it('places a data-item Read chunk at its XDR position in the call', async () => {
    const { device, deliver } = serve();
    const data = Buffer.alloc(3000);
    for (let index = 0; index < data.length; index++) data[index] = index & 0xff;
    // Inline: the call header and the opaque's length word; the data follows at position 44.
    const inline = rpcCall(42, 2, (writer) => writer.writeUint(data.length));
    const chunk = exposeChunk(device, 0x60, inline.length, data, 2);
    await deliver(Buffer.concat([encodeCallHeader({ ...callFields(42), readChunks: [chunk] }), inline]));
    expect(resultOf(device.replies[0]!.send)).toBe(data.reduce((sum, byte) => sum + byte, 0));
  });

  it('pulls the next call into the Read sink the last one used: one registration for every call', async () => {
    const { device, transport, deliver } = serve();
    const sums: number[] = [];
    let registrationsAfterFirst = 0;
    for (let call = 0; call < 3; call++) {
      const data = Buffer.alloc(2000 + call * 700, 17 + call);
      const inline = rpcCall(50 + call, 2, (writer) => writer.writeUint(data.length));
      const chunk = exposeChunk(device, 0x70 + call, inline.length, data, 2);
      await deliver(Buffer.concat([encodeCallHeader({ ...callFields(50 + call), readChunks: [chunk] }), inline]));
      sums.push(resultOf(device.replies[call]!.send));
      if (call === 0) registrationsAfterFirst = device.registrations;
    }
    expect(sums).toEqual([2000 * 17, 2700 * 18, 3400 * 19]);
    expect(device.registrations).toBe(registrationsAfterFirst);
    expect(transport.readSinks.keptCount).toBe(1);
    device.completeSends(3);
    await settle();
    transport.finishClose();
    expect(device.openRegistrations).toBe(0);
  });

  it('never reuses a Read sink whose bytes the reply sends back', async () => {
    const { device, transport, deliver } = serve();
    const data = Buffer.alloc(3000, 0x5a);
    const inline = rpcCall(60, 3, (writer) => writer.writeUint(data.length));
    const chunk = exposeChunk(device, 0x80, inline.length, data, 1);
    await deliver(Buffer.concat([encodeCallHeader({ ...callFields(60), readChunks: [chunk] }), inline]));
    expect(decodeReplyHeader(device.replies[0]!.send)).toMatchObject({ kind: 'reply', xid: 60 });
    expect(device.replies[0]!.send.subarray(-3000).equals(data)).toBe(true);
    expect(transport.readSinks.keptCount).toBe(0);
    device.completeSends(1);
    await settle();
    expect(device.openRegistrations).toBe(1); // only the send contexts' one registration remains
  });

  it('answers ERR_CHUNK when a Read fails and keeps its sink only until teardown', async () => {
    const { device, transport, deliver } = serve();
    const inline = rpcCall(43, 2, (writer) => writer.writeUint(64));
    const unregistered: ReadChunk = { position: inline.length, length: 64, segments: [{ handle: 0x99, length: 64, offset: 0x1000n }] };
    await deliver(Buffer.concat([encodeCallHeader({ ...callFields(43), readChunks: [unregistered] }), inline]));
    expect(decodeReplyHeader(device.replies[0]!.send)).toMatchObject({ kind: 'error', xid: 43, errorCode: 2 });
    expect(transport.metrics.rejected['read-failed']).toBe(1);
    device.completeSends(1);
    await settle();
    expect(transport.readSinks.keptCount).toBe(1);
    expect(device.openRegistrations).toBe(2); // the send contexts' one registration and the kept sink
    transport.finishClose();
    expect(device.openRegistrations).toBe(0);
  });
});
