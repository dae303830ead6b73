/**
 * A 1 MiB DDP-eligible result returned through a Write chunk (run inside the
 * lab), against `ib_write_bw` (perftest, 1 MiB RDMA Writes over rdma_cm) on the
 * same device in the same run. Prints MB/s of each and the ratio.
 *
 * The requester is bare verbs: it registers a 1 MiB sink for RDMA Write, sends
 * READ(1 MiB) with a Write chunk naming the sink, and waits for the reply (one
 * call outstanding). Env: BENCH_WRITE_ROUNDS (default 40), RXE_LAB_ADDR.
 */
import { execFileSync, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Dispatcher, authNone, defineProcedure, writeCallHeader } from '@roce-rpc/oncrpc';
import { connect, openDevice, type Completion } from '@roce-rpc/verbs';
import { XdrWriter, xdrUint, xdrVariableOpaque } from '@roce-rpc/xdr';
import { decodeReplyHeader, encodeCallHeader, encodeConnectPrivateData, RdmaProcedure, SvcRdmaServer } from '../dist/index.js';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
const rounds = Number(process.env.BENCH_WRITE_ROUNDS ?? 40);
const MIB = 1024 * 1024;
const PROGRAM = 0x2000_0104;
const PORT = 20055;

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

async function writeChunkBandwidth(): Promise<number> {
  const payload = Buffer.alloc(MIB, 0x5a);
  const dispatcher = new Dispatcher().addVersion(
    PROGRAM,
    { name: 'BULK', version: 1, procedures: [defineProcedure('READ', 1, xdrUint, xdrVariableOpaque(MIB, true), { argument: false, result: true })] },
    { READ: (count: number) => payload.subarray(0, count) },
  );
  const server = SvcRdmaServer.listen(dispatcher, { address, port: PORT });
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
const ours = await writeChunkBandwidth();
console.log(`1 MiB RDMA Writes, ${rounds} rounds: ib_write_bw ${baseline.toFixed(1)} MB/s; READ(1 MiB) through a Write chunk ${ours.toFixed(1)} MB/s; ratio ${(ours / baseline).toFixed(2)}x`);
