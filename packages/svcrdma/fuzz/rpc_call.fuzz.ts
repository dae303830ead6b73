/**
 * Fuzzes an RPC-over-RDMA call end to end on the host: transport header, then
 * (when the header is accepted) the RPC call through @roce-rpc/oncrpc's
 * Dispatcher, as the transport does. The header decoder may only throw a
 * HeaderRejection; the dispatcher may only answer (a reply or a drop), never
 * throw. Every reply must plan (planReply) without throwing.
 *
 *   node fuzz/rpc_call.fuzz.ts [cases=1000000] [seed]
 */
import { Dispatcher, authNone, encodeAuthSys, writeCallHeader, defineProcedure } from '@roce-rpc/oncrpc';
import { XdrWriter, xdrString, xdrUint, xdrVariableOpaque } from '@roce-rpc/xdr';
import { decodeCallHeader, encodeCallHeader, planReply, RdmaProcedure } from '../dist/index.js';
import { runFuzzer, startFuzzer } from './harness.ts';

const fuzzer = startFuzzer();
const below = fuzzer.below;

const PROGRAM = 0x2000_0099;
const dispatcher = new Dispatcher().addVersion(PROGRAM, {
  name: 'FUZZ',
  version: 1,
  procedures: [
    defineProcedure('NULL', 0, { name: 'void', encode() {}, decode() {} }, { name: 'void', encode() {}, decode() {} }),
    defineProcedure('LENGTH', 1, xdrString(255), xdrUint),
    defineProcedure('READ', 2, xdrUint, xdrVariableOpaque(1 << 20, true), { argument: false, result: true }),
  ],
}, {
  LENGTH: (name: string) => name.length,
  READ: (count: number) => Buffer.alloc(Math.min(count, 70000), 0x61),
});

function call(procedure: number, credential = authNone, args?: (writer: XdrWriter) => void): Buffer {
  const writer = new XdrWriter();
  writeCallHeader(writer, { xid: below(0xffffffff), program: PROGRAM, version: 1, procedure, credential, verifier: authNone });
  args?.(writer);
  return writer.finish().toBuffer();
}

const rdmaHeader = (writeList = false) =>
  encodeCallHeader({
    xid: 9,
    credits: 32,
    procedure: RdmaProcedure.MSG,
    callChunk: null,
    readChunks: [],
    writeList: writeList ? [{ length: 65536, segments: [{ handle: 5, length: 65536, offset: 0x1000n }] }] : [],
    replyChunk: null,
  });

const corpus: Buffer[] = [
  Buffer.concat([rdmaHeader(), call(0)]),
  Buffer.concat([rdmaHeader(), call(1, encodeAuthSys({ stamp: 1, machineName: 'host', uid: 0, gid: 0, gids: [1, 2] }), (w) => w.writeString('name', 255))]),
  Buffer.concat([rdmaHeader(true), call(2, authNone, (w) => w.writeUint(65536))]),
  Buffer.concat([rdmaHeader(true), call(2, authNone, (w) => w.writeUint(100))]),
];
const interesting = [0, 1, 2, 3, 4, 0xffffffff, 0x80000000, 255, 256, 400, 401, 16, 17, PROGRAM, 65536];

function mutate(input: Buffer): Buffer {
  let bytes = Buffer.from(input);
  for (let round = 1 + below(3); round > 0; round--) {
    const word = below(Math.max(1, bytes.length >>> 2)) * 4;
    const action = below(5);
    if (action === 0 && bytes.length > 0) bytes[below(bytes.length)] ^= 1 + below(255);
    else if (action === 1 && word + 4 <= bytes.length) bytes.writeUInt32BE(interesting[below(interesting.length)]!, word);
    else if (action === 2) bytes = bytes.subarray(0, below(bytes.length + 1));
    else if (action === 3) bytes = Buffer.concat([bytes.subarray(0, word), bytes.subarray(word + 4)]);
    else bytes = Buffer.concat([bytes, Buffer.alloc(below(32), below(256))]);
  }
  return bytes;
}

runFuzzer('rpc call', fuzzer, () => mutate(corpus[below(corpus.length)]!), (input, count) => {
  const header = decodeCallHeader(input);
  const reply = dispatcher.handleCall(input.subarray(header.headerBytes), { transport: 'rdma' });
  if (reply === null) {
    count('rpc dropped');
    return;
  }
  if (reply instanceof Promise) throw new Error('synchronous handlers gave a promise');
  count(`rpc ${reply.kind}`);
  const plan = planReply({ xid: header.xid, credits: 1, body: reply.message, writeList: header.writeList, replyChunk: header.replyChunk, sendLimitBytes: 4096 });
  count(`plan ${plan.kind}`);
});
