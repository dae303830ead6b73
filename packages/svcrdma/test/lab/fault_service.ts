/**
 * The service and the call builders the fault tests share with their child
 * processes (`vanishing_peers.ts` runs under plain node, so this file imports
 * the built package and keeps to erasable TypeScript).
 *
 * Procedures: NULL; READ n → n pattern bytes, DDP-eligible (a Write chunk);
 * CHECK bytes → how many match the pattern, DDP-eligible (a Read chunk);
 * SLOW ms → ms after waiting that long (an RPC still in service when its peer goes).
 */
import { Dispatcher, authNone, defineProcedure, writeCallHeader } from '@roce-rpc/oncrpc';
import { XdrWriter, xdrUint, xdrVariableOpaque, xdrVoid } from '@roce-rpc/xdr';
import { RdmaProcedure, encodeCallHeader, type ReadChunk, type WriteChunk } from '../../dist/index.js';

export const FAULT_PROGRAM = 0x2000_0105;
export const FAULT_VERSION = 1;
export const Procedure = { NULL: 0, READ: 1, CHECK: 2, SLOW: 3 } as const;
/** Largest READ result or CHECK argument: 1 MiB, the transport's chunk limit. */
const BULK_BYTES_MAX = 1 << 20;

/** Bytes any side can regenerate to check a transfer: byte i is (31 i + 7) mod 256. */
export function pattern(count: number): Buffer {
  const data = Buffer.alloc(count);
  for (let index = 0; index < count; index++) data[index] = (index * 31 + 7) & 0xff;
  return data;
}

export function faultDispatcher(): Dispatcher {
  return new Dispatcher().addVersion(
    FAULT_PROGRAM,
    {
      name: 'FAULTS',
      version: FAULT_VERSION,
      procedures: [
        defineProcedure('NULL', Procedure.NULL, xdrVoid, xdrVoid),
        defineProcedure('READ', Procedure.READ, xdrUint, xdrVariableOpaque(BULK_BYTES_MAX, true), { argument: false, result: true }),
        defineProcedure('CHECK', Procedure.CHECK, xdrVariableOpaque(BULK_BYTES_MAX, true), xdrUint, { argument: true, result: false }),
        defineProcedure('SLOW', Procedure.SLOW, xdrUint, xdrUint),
      ],
    },
    {
      READ: (count: number) => pattern(count),
      CHECK: (data: Uint8Array) => (Buffer.from(data).equals(pattern(data.length)) ? data.length : 0),
      SLOW: async (milliseconds: number) => {
        await new Promise((resolve) => setTimeout(resolve, milliseconds));
        return milliseconds;
      },
    },
  );
}

/** An RPC call message of the fault program, with an optional uint argument. */
export function rpcCall(xid: number, procedure: number, argument?: number): Buffer {
  const writer = new XdrWriter();
  writeCallHeader(writer, { xid, program: FAULT_PROGRAM, version: FAULT_VERSION, procedure, credential: authNone, verifier: authNone });
  if (argument !== undefined) writer.writeUint(argument);
  return writer.finish().toBuffer();
}

/** A whole RDMA_MSG: transport header (asking for `credits`) and the inline RPC call. */
export function rdmaMessage(
  xid: number,
  credits: number,
  call: Buffer,
  chunks: { readChunks?: ReadChunk[]; writeList?: WriteChunk[] } = {},
): Buffer {
  const header = encodeCallHeader({
    xid,
    credits,
    procedure: RdmaProcedure.MSG,
    callChunk: null,
    readChunks: chunks.readChunks ?? [],
    writeList: chunks.writeList ?? [],
    replyChunk: null,
  });
  return Buffer.concat([header, call]);
}
