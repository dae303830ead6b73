/**
 * A child process of the abrupt-disconnect test (plain node, inside the lab):
 * a bare verbs requester that connects to PORT again and again, sends one
 * call, waits until the server has it (the Send completed: the server's
 * Receive took it) and vanishes — its QP and id destroyed without a
 * disconnect, the way a crashed peer's kernel cleans up. Each round picks the
 * moment it dies in, in turn:
 *   mid-rpc          SLOW: the server's procedure is still running;
 *   mid-write-chunk  READ with a Write chunk: the server is pushing the result into our memory;
 *   mid-read-chunk   CHECK with a Read chunk: the server is pulling the argument from our memory.
 * One device, protection domain, completion queue and set of buffers serve
 * every round (the server cannot tell); only the QP and the id are per round.
 *
 * argv: port rounds vanish|hold [moments]. `moments`: a comma list of the
 * moments above to take turns (default all three). With `hold` it makes
 * `rounds` connections, leaves a SLOW call in service on each, prints
 * `holding` and waits to be SIGKILLed. Prints one JSON line at the end:
 * rounds, seconds, and the median/p99 times of connect, call and close.
 */
import { connect, openDevice, type CmId, type CompletionQueue, type Device, type MemoryRegion, type ProtectionDomain } from '@roce-rpc/verbs';
import { encodeConnectPrivateData } from '../../dist/index.js';
import { Procedure, pattern, rdmaMessage, rpcCall } from './fault_service.ts';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
export const VANISHING_MOMENTS = ['mid-rpc', 'mid-write-chunk', 'mid-read-chunk'] as const;
export type VanishingMoment = (typeof VANISHING_MOMENTS)[number];

const [port, rounds] = process.argv.slice(2, 4).map(Number) as [number, number];
const hold = process.argv[4] === 'hold';
const moments = (process.argv[5]?.split(',') ?? VANISHING_MOMENTS) as VanishingMoment[];
if (moments.some((moment) => !VANISHING_MOMENTS.includes(moment))) throw new Error(`moments: ${moments.join(',')} (known: ${VANISHING_MOMENTS.join(',')})`);
/** Bytes of the Write sink and the Read source: big enough that the transfer takes a while on rxe. */
const BULK_BYTES = 256 * 1024;
/** The credits asked for: ours are few, one call per connection. */
const CREDITS = 4;
const SEND_COMPLETION_WAIT_MS = 10_000;
/** The SLOW call's time in service: long enough to be mid-RPC, short enough not to hold a server worker for long. */
const SLOW_MS = 30;
const HOLD_SLOW_MS = 300;
const PROGRESS_EVERY = 50;

interface Resources {
  device: Device;
  protectionDomain: ProtectionDomain;
  completions: CompletionQueue;
  send: MemoryRegion<Buffer>;
  receive: MemoryRegion<Buffer>;
  sink: MemoryRegion<Buffer>;
  source: MemoryRegion<Buffer>;
}

let resources: Resources | undefined;

function resourcesFor(deviceName: string): Resources {
  if (resources !== undefined) return resources;
  const device = openDevice(deviceName);
  const protectionDomain = device.allocateProtectionDomain();
  const source = protectionDomain.registerMemory(pattern(BULK_BYTES), { remoteRead: true });
  resources = {
    device,
    protectionDomain,
    completions: device.createCompletionQueue({ depth: 256 }),
    send: protectionDomain.registerMemory(Buffer.alloc(4096)),
    receive: protectionDomain.registerMemory(Buffer.alloc(4096)),
    sink: protectionDomain.registerMemory(Buffer.alloc(BULK_BYTES), { remoteWrite: true }),
    source,
  };
  return resources;
}

async function connectOnce(): Promise<CmId> {
  return connect({
    address,
    port,
    privateData: encodeConnectPrivateData({ sendBytes: 4096, receiveBytes: 4096, remoteInvalidate: false }),
    createQueuePair: (id) => {
      const { protectionDomain, completions, receive } = resourcesFor(id.deviceName);
      const queuePair = id.createQueuePair({ protectionDomain, sendCompletionQueue: completions, recvCompletionQueue: completions });
      queuePair.postRecvOne(1, receive, 0, 4096);
      return queuePair;
    },
  });
}

/** The call that has the server busy at `moment` when the peer dies. */
function callFor(round: number, moment: VanishingMoment, slowMs: number): Buffer {
  const { sink, source } = resources!;
  switch (moment) {
    case 'mid-rpc':
      return rdmaMessage(round, CREDITS, rpcCall(round, Procedure.SLOW, slowMs));
    case 'mid-write-chunk': {
      const writeChunk = { length: BULK_BYTES, segments: [{ handle: sink.rkey, length: BULK_BYTES, offset: BigInt(sink.address) }] };
      return rdmaMessage(round, CREDITS, rpcCall(round, Procedure.READ, BULK_BYTES), { writeList: [writeChunk] });
    }
    case 'mid-read-chunk': {
      const inline = rpcCall(round, Procedure.CHECK, BULK_BYTES); // the opaque's length word; its bytes come by Read chunk
      const segments = [{ handle: source.rkey, length: BULK_BYTES, offset: BigInt(source.address) }];
      return rdmaMessage(round, CREDITS, inline, { readChunks: [{ position: inline.length, length: BULK_BYTES, segments }] });
    }
  }
}

/** Posts the call and waits for its Send to complete: then the server holds it. */
async function sendCall(cmId: CmId, wrId: number, message: Buffer): Promise<void> {
  const { send, completions } = resources!;
  message.copy(send.buffer);
  cmId.queuePair!.postSendOne(wrId, send, 0, message.length);
  const deadline = performance.now() + SEND_COMPLETION_WAIT_MS;
  while (performance.now() < deadline) {
    for (const completion of completions.poll(16, 0)) {
      if (completion.wrId === wrId) {
        if (!completion.ok) throw new Error(`call ${wrId}: Send ${completion.status}`);
        return;
      }
    }
    // Not a spin: a peer spinning here starves rxe's timers in the emulated guest.
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  throw new Error(`call ${wrId}: no Send completion within ${SEND_COMPLETION_WAIT_MS} ms`);
}

/** Median and p99 of `times`, in ms. */
function summary(times: number[]): { medianMs: number; p99Ms: number } {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (fraction: number) => Number((sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? 0).toFixed(1));
  return { medianMs: at(0.5), p99Ms: at(0.99) };
}

async function vanishRepeatedly(): Promise<void> {
  const phases = { connect: [] as number[], call: [] as number[], close: [] as number[] };
  const started = performance.now();
  for (let round = 0; round < rounds; round++) {
    const begin = performance.now();
    const cmId = await connectOnce();
    const connected = performance.now();
    await sendCall(cmId, 1000 + round, callFor(round, moments[round % moments.length]!, SLOW_MS));
    const called = performance.now();
    cmId.close(); // QP and id destroyed; no disconnect first
    phases.connect.push(connected - begin);
    phases.call.push(called - connected);
    phases.close.push(performance.now() - called);
    if ((round + 1) % PROGRESS_EVERY === 0) {
      process.stderr.write(`vanishing peers [${process.pid}]: ${round + 1} rounds in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
    }
  }
  const report = {
    rounds,
    seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
    connect: summary(phases.connect),
    call: summary(phases.call),
    close: summary(phases.close),
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
  const { send, receive, sink, source, completions, protectionDomain, device } = resources!;
  for (const closable of [send, receive, sink, source, completions, protectionDomain, device]) closable.close();
}

async function holdUntilKilled(): Promise<void> {
  const held: CmId[] = [];
  for (let index = 0; index < rounds; index++) held.push(await connectOnce());
  // Calls last: every connection has one in service when the parent's SIGKILL lands.
  for (const [index, cmId] of held.entries()) await sendCall(cmId, 1000 + index, callFor(index, 'mid-rpc', HOLD_SLOW_MS));
  process.stdout.write('holding\n');
  setInterval(() => {}, 60_000);
}

await (hold ? holdUntilKilled() : vanishRepeatedly());
