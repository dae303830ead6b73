/**
 * A 1 MiB DDP-eligible result returned through a Write chunk (run inside the
 * lab), against `ib_write_bw` (perftest, 1 MiB RDMA Writes over rdma_cm) on the
 * same device in the same run. Prints MB/s of each and the ratio.
 *
 * The requester is bare verbs: it registers a 1 MiB sink for RDMA Write, sends
 * READ(1 MiB) with a Write chunk naming the sink, and waits for the reply (one
 * call outstanding). The same bulk service is measured on the main-thread server
 * (SvcRdmaServer: the reply's payload registered per reply) and on worker threads
 * (SvcRdmaThreadedServer, 2 threads: the payload copied into the transport's
 * registered write buffer). Env: BENCH_WRITE_ROUNDS (default 40), RXE_LAB_ADDR.
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

async function writeChunkBandwidth(startServer: () => Promise<BenchServer>): Promise<number> {
  const server = await startServer();
  const device = openDevice('rxe0');
  const pd = device.allocateProtectionDomain();
  const cq = device.createCompletionQueue({ depth: 64 });
  const send = pd.registerMemory(Buffer.alloc(4096));
  const receive = pd.registerMemory(Buffer.alloc(4096));
  const sink = pd.registerMemory(Buffer.alloc(MIB), { remoteWrite: true });
  const cmId = await connect({
    address,
    port: PORT,
    privateData: encodeConnectPrivateData({ sendBytes: 4096, receiveBytes: 4096, remoteInvalidate: false }),
    createQueuePair: (id) => id.createQueuePair({ protectionDomain: pd, sendCompletionQueue: cq, recvCompletionQueue: cq }),
  });
  const queuePair = cmId.queuePair!;
  const waitFor = async (wrId: number): Promise<Completion> => {
    for (;;) {
      for (const completion of cq.poll(8, 0)) if (completion.wrId === wrId) return completion;
      await sleep(0);
    }
  };
  const writeChunk = { length: MIB, segments: [{ handle: sink.rkey, length: MIB, offset: BigInt(sink.address) }] };
  const started = performance.now();
  for (let round = 0; round < rounds; round++) {
    const writer = new XdrWriter();
    writeCallHeader(writer, { xid: round, program: PROGRAM, version: 1, procedure: 1, credential: authNone, verifier: authNone });
    writer.writeUint(MIB);
    const header = encodeCallHeader({ xid: round, credits: 8, procedure: RdmaProcedure.MSG, callChunk: null, readChunks: [], writeList: [writeChunk], replyChunk: null });
    const message = Buffer.concat([header, writer.finish().toBuffer()]);
    message.copy(send.buffer);
    queuePair.postRecvOne(1, receive, 0, 4096);
    queuePair.postSendOne(2, send, 0, message.length);
    const reply = await waitFor(1);
    const transport = decodeReplyHeader(receive.buffer.subarray(0, reply.byteLength));
    if (transport.kind !== 'reply' || transport.writeList[0]?.length !== MIB) throw new Error(`round ${round}: ${JSON.stringify(transport)}`);
  }
  const seconds = (performance.now() - started) / 1000;
  if (sink.buffer[MIB - 1] !== 0x5a) throw new Error('the payload did not land');
  const disconnected = new Promise((resolve) => cmId.once('disconnected', resolve));
  cmId.disconnect();
  await disconnected;
  queuePair.close();
  cmId.close();
  for (const closable of [send, receive, sink, cq, pd, device]) closable.close();
  await server.close();
  return (rounds * MIB) / seconds / 1e6;
}

const baseline = await ibWriteBandwidth();
const mainThread = await writeChunkBandwidth(async () => SvcRdmaServer.listen(createCallHandler(), { address, port: PORT }));
const threads = await writeChunkBandwidth(() =>
  SvcRdmaThreadedServer.listen({ address, port: PORT, threads: THREADS, serviceModule: new URL('./bulk_service.mjs', import.meta.url) }),
);
console.log(
  `1 MiB RDMA Writes, ${rounds} rounds: ib_write_bw ${baseline.toFixed(1)} MB/s; READ(1 MiB) through a Write chunk: ` +
    `main thread ${mainThread.toFixed(1)} MB/s (${(mainThread / baseline).toFixed(2)}x), ${THREADS} worker threads ${threads.toFixed(1)} MB/s (${(threads / baseline).toFixed(2)}x)`,
);
