/**
 * NULL RPC round trips over rxe0 (run inside the lab: `pnpm --filter
 * @roce-rpc/svcrdma bench`), against a baseline measured in the same run: a
 * bare Send/Receive ping-pong on @roce-rpc/verbs with the same threaded
 * completion queues, i.e. the floor any transport on this core pays.
 *
 * Prints medians, p99 and the ratio RPC / baseline. Env: BENCH_ROUNDS (default
 * 500), RXE_LAB_ADDR.
 */
import { Dispatcher, defineProcedure } from '@roce-rpc/oncrpc';
import { connect, listen, openDevice, type Completion } from '@roce-rpc/verbs';
import { xdrVoid } from '@roce-rpc/xdr';
import { RdmaRpcClient, SvcRdmaServer } from '../dist/index.js';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
const rounds = Number(process.env.BENCH_ROUNDS ?? 500);

function summary(times: number[]): { median: number; p99: number } {
  const sorted = [...times].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)]!, p99: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]! };
}

/**
 * Send/Receive ping-pong between two QPs of this process, 64-byte messages.
 * threaded: completion threads deliver to JavaScript (what svcrdma uses today);
 * polled: this thread spins on the CQs (the floor: no thread wake-ups).
 */
async function verbsPingPong(mode: 'threaded' | 'polled'): Promise<number[]> {
  const device = openDevice('rxe0');
  const pd = device.allocateProtectionDomain();
  const waiting = new Map<number, (completion: Completion) => void>();
  const onCompletions = (completions: Completion[]) => {
    for (const completion of completions) waiting.get(completion.wrId)?.(completion);
  };
  const cqOptions = mode === 'threaded' ? { depth: 64, onCompletions } : { depth: 64 };
  const serverCq = device.createCompletionQueue(cqOptions);
  const clientCq = device.createCompletionQueue(cqOptions);
  const buffer = Buffer.alloc(4096);
  const region = pd.registerMemory(buffer);
  const listener = listen({ address, port: 0 });
  const accepted = new Promise<import('@roce-rpc/verbs').CmId>((resolve) =>
    listener.on('connection', async ({ cmId }) => {
      cmId.createQueuePair({ protectionDomain: pd, sendCompletionQueue: serverCq, recvCompletionQueue: serverCq });
      await cmId.accept();
      resolve(cmId);
    }),
  );
  const client = await connect({
    address,
    port: listener.port,
    createQueuePair: (cmId) => cmId.createQueuePair({ protectionDomain: pd, sendCompletionQueue: clientCq, recvCompletionQueue: clientCq }),
  });
  const server = await accepted;
  const spin = (cq: typeof serverCq): Promise<Completion> => {
    for (;;) {
      const [completion] = cq.poll(1, 1000);
      if (completion !== undefined) return Promise.resolve(completion);
    }
  };
  const next = (wrId: number) =>
    mode === 'threaded' ? new Promise<Completion>((resolve) => waiting.set(wrId, resolve)) : spin(wrId === 1 ? serverCq : clientCq);
  // Server echoes every message back.
  const serverQp = server.queuePair!;
  const clientQp = client.queuePair!;
  const times: number[] = [];
  for (let round = 0; round < rounds; round++) {
    serverQp.postRecvOne(1, region, 0, 64);
    clientQp.postRecvOne(2, region, 1024, 64);
    const serverReceived = mode === 'threaded' ? next(1) : null;
    const clientReceived = mode === 'threaded' ? next(2) : null;
    const begin = performance.now();
    clientQp.postSendOne(3, region, 2048, 64, 0); // unsignaled
    await (serverReceived ?? next(1));
    serverQp.postSendOne(4, region, 3072, 64, 0);
    await (clientReceived ?? next(2));
    times.push(performance.now() - begin);
  }
  client.close();
  server.close();
  listener.close();
  for (const closable of [region, serverCq, clientCq, pd, device]) closable.close();
  return times;
}

async function nullRpc(): Promise<number[]> {
  const PROGRAM = 0x2000_0102;
  const dispatcher = new Dispatcher().addVersion(PROGRAM, { name: 'BENCH', version: 1, procedures: [defineProcedure('NULL', 0, xdrVoid, xdrVoid)] }, {});
  const server = SvcRdmaServer.listen(dispatcher, { address, port: 20049 });
  const client = await RdmaRpcClient.connect({ address, port: 20049 });
  const times: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const begin = performance.now();
    await client.call(PROGRAM, 1, 0, xdrVoid, undefined, xdrVoid);
    times.push(performance.now() - begin);
  }
  await client.close();
  await server.close();
  return times;
}

const polled = summary(await verbsPingPong('polled'));
const baseline = summary(await verbsPingPong('threaded'));
const rpc = summary(await nullRpc());
const format = (value: number) => `${(value * 1000).toFixed(0)} µs`;
console.log(`floor: verbs ping-pong, polled CQs:   median ${format(polled.median)}, p99 ${format(polled.p99)} (${rounds} rounds)`);
console.log(`baseline verbs Send/Recv ping-pong: median ${format(baseline.median)}, p99 ${format(baseline.p99)} (threaded CQs)`);
console.log(`svcrdma NULL RPC, 1 outstanding:   median ${format(rpc.median)}, p99 ${format(rpc.p99)}`);
console.log(`ratio NULL RPC / ping-pong: median ${(rpc.median / baseline.median).toFixed(2)}x, p99 ${(rpc.p99 / baseline.p99).toFixed(2)}x`);
