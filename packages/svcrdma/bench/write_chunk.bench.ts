/**
 * A 1 MiB DDP-eligible result returned through a Write chunk (run inside the
 * lab), against `ib_write_bw` (perftest, 1 MiB RDMA Writes over rdma_cm) on the
 * same device in the same run. Prints MB/s of each and the ratio.
 *
 * The requester is bare verbs: it registers a 1 MiB sink for RDMA Write, sends
 * READ(1 MiB) with a Write chunk naming the sink, and waits for the reply: one
 * call outstanding, then BENCH_WRITE_DEPTH (default 4), each with its own sink.
 * The same bulk service is measured on the main-thread server
 * (SvcRdmaServer: the reply's payload registered per reply) and on worker threads
 * (SvcRdmaThreadedServer, 2 threads: the payload copied into the transport's
 * registered write buffer). Env: BENCH_WRITE_ROUNDS (default 40), BENCH_WRITE_DEPTH, RXE_LAB_ADDR.
 */
import { execFileSync, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { authNone, writeCallHeader } from '@roce-rpc/oncrpc';
import { connect, openDevice, type Completion } from '@roce-rpc/verbs';
import { XdrWriter } from '@roce-rpc/xdr';
import { decodeReplyHeader, encodeCallHeader, encodeConnectPrivateData, RdmaProcedure, SvcRdmaServer, SvcRdmaThreadedServer } from '../dist/index.js';
import { BULK_PROGRAM, createCallHandler } from './bulk_service.mjs';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
const rounds = Number(process.env.BENCH_WRITE_ROUNDS ?? 40);
const MIB = 1024 * 1024;
const PROGRAM = BULK_PROGRAM;
const PORT = 20055;
const THREADS = 2;
/** Calls in flight in the second row, as a client reading ahead keeps them (ib_write_bw keeps its Writes in flight too). */
const DEPTH = Number(process.env.BENCH_WRITE_DEPTH ?? 4);
const MESSAGE_BYTES = 4096;
const SEND_WR_ID = 1_000_000;

/** perftest's own figure: 1 MiB RDMA Writes between two processes on the device. */
async function ibWriteBandwidth(): Promise<number> {
  const args = ['-d', 'rxe0', '-R', '-F', '-s', String(MIB), '-n', String(rounds), '-p', '18515'];
  const server = spawn('ib_write_bw', args, { stdio: 'ignore' });
  let output = '';
  for (let attempt = 0; attempt < 20 && output === ''; attempt++) {
    await sleep(500); // the server must listen before the client connects
    try {
      output = execFileSync('ib_write_bw', [...args, address], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      output = '';
    }
  }
  server.kill();
  const line = output.split('\n').find((candidate) => candidate.trim().startsWith(String(MIB)));
  if (line === undefined) throw new Error(`no ib_write_bw result:\n${output}`);
  return Number(line.trim().split(/\s+/)[3]); // #bytes #iterations BW-peak BW-average MsgRate
}

/** A listening server of either kind; close() stops it. */
type BenchServer = { close(): Promise<void> };

async function writeChunkBandwidth(startServer: () => Promise<BenchServer>, depth: number): Promise<number> {
  const server = await startServer();
  const device = openDevice('rxe0');
  const pd = device.allocateProtectionDomain();
  const cq = device.createCompletionQueue({ depth: 4 * depth + 16 });
  const send = pd.registerMemory(Buffer.alloc(depth * MESSAGE_BYTES));
  const receive = pd.registerMemory(Buffer.alloc(depth * MESSAGE_BYTES));
  const sinks = Array.from({ length: depth }, () => pd.registerMemory(Buffer.alloc(MIB), { remoteWrite: true }));
  const cmId = await connect({
    address,
    port: PORT,
    privateData: encodeConnectPrivateData({ sendBytes: MESSAGE_BYTES, receiveBytes: MESSAGE_BYTES, remoteInvalidate: false }),
    createQueuePair: (id) => id.createQueuePair({ protectionDomain: pd, sendCompletionQueue: cq, recvCompletionQueue: cq }),
  });
  const queuePair = cmId.queuePair!;
  // A call goes out of a free slot (its send bytes and its sink); replies may come in any order and
  // land in any posted Receive, so the reply's xid says which slot it frees.
  const slotOfCall = new Map<number, number>();
  const call = (xid: number, slot: number) => {
    slotOfCall.set(xid, slot);
    const sink = sinks[slot]!;
    sink.buffer[MIB - 1] = 0; // the reply's check then sees this call's payload, not the last one's
    const writer = new XdrWriter();
    writeCallHeader(writer, { xid, program: PROGRAM, version: 1, procedure: 1, credential: authNone, verifier: authNone });
    writer.writeUint(MIB);
    const writeChunk = { length: MIB, segments: [{ handle: sink.rkey, length: MIB, offset: BigInt(sink.address) }] };
    const header = encodeCallHeader({ xid, credits: 8, procedure: RdmaProcedure.MSG, callChunk: null, readChunks: [], writeList: [writeChunk], replyChunk: null });
    const length = Buffer.concat([header, writer.finish().toBuffer()]).copy(send.buffer, slot * MESSAGE_BYTES);
    queuePair.postSendOne(SEND_WR_ID, send, slot * MESSAGE_BYTES, length);
  };
  for (let slot = 0; slot < depth; slot++) queuePair.postRecvOne(slot, receive, slot * MESSAGE_BYTES, MESSAGE_BYTES);
  const started = performance.now();
  let sent = 0;
  for (; sent < Math.min(depth, rounds); sent++) call(sent, sent);
  for (let answered = 0; answered < rounds; ) {
    const completions = cq.poll(8, 0);
    if (completions.length === 0) await sleep(0);
    for (const completion of completions) {
      if (completion.status !== 'IBV_WC_SUCCESS') throw new Error(`completion ${completion.wrId}: ${completion.status}`);
      if (completion.wrId === SEND_WR_ID) continue;
      const at = completion.wrId * MESSAGE_BYTES;
      const transport = decodeReplyHeader(receive.buffer.subarray(at, at + completion.byteLength));
      if (transport.kind !== 'reply' || transport.writeList[0]?.length !== MIB) throw new Error(`reply ${answered}: ${JSON.stringify(transport)}`);
      const slot = slotOfCall.get(transport.xid);
      if (slot === undefined) throw new Error(`a reply to call ${transport.xid}, not outstanding`);
      slotOfCall.delete(transport.xid);
      if (sinks[slot]!.buffer[MIB - 1] !== 0x5a) throw new Error(`call ${transport.xid}: the payload did not land`);
      answered++;
      queuePair.postRecvOne(completion.wrId, receive, at, MESSAGE_BYTES);
      if (sent < rounds) call(sent++, slot);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const disconnected = new Promise((resolve) => cmId.once('disconnected', resolve));
  cmId.disconnect();
  await disconnected;
  queuePair.close();
  cmId.close();
  for (const closable of [send, receive, ...sinks, cq, pd, device]) closable.close();
  await server.close();
  return (rounds * MIB) / seconds / 1e6;
}

const baseline = await ibWriteBandwidth();
const startMainThread = async () => SvcRdmaServer.listen(createCallHandler(), { address, port: PORT });
const startThreads = () =>
  SvcRdmaThreadedServer.listen({ address, port: PORT, threads: THREADS, serviceModule: new URL('./bulk_service.mjs', import.meta.url) });
const ratio = (rate: number) => `${rate.toFixed(1)} MB/s (${(rate / baseline).toFixed(2)}x)`;
console.log(`1 MiB RDMA Writes, ${rounds} rounds: ib_write_bw ${baseline.toFixed(1)} MB/s; READ(1 MiB) through a Write chunk:`);
for (const depth of new Set([1, DEPTH])) {
  const mainThread = await writeChunkBandwidth(startMainThread, depth);
  const threads = await writeChunkBandwidth(startThreads, depth);
  console.log(`  ${depth} outstanding: main thread ${ratio(mainThread)}, ${THREADS} worker threads ${ratio(threads)}`);
}
