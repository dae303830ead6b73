// The passive side of the benchmark, in its own process: `node peer.ts <port> [batch|calls]`.
// `batch` (default) posts and polls through one WorkBatch call per message;
// `calls` uses one call per work request plus one per poll.
// Accepts one connection and serves it from a polled CQ in a spinning loop
// (the way perftest serves): every 64 B message is echoed back from the
// receive slot it landed in; a message whose first byte is 'Q' ends the process. It also
// exposes a 1 MiB region for the client's RDMA Writes (advertised in the
// accept private data: address u64 BE, rkey u32 BE).
import { COMPLETION_WORDS, listen, openDevice, SEND_FLAG } from '../dist/index.js';

const MESSAGE_BYTES = 64;
const RECEIVES = 64;
const SPIN_MICROS = 100_000;
/** Sends are inline and unsignaled except one in SIGNAL_EVERY (which frees the send queue slots). */
const SIGNAL_EVERY = Number(process.env['BENCH_SIGNAL_EVERY'] ?? 1);
const INLINE = process.env['BENCH_INLINE'] === '1' ? SEND_FLAG.INLINE : 0;

const device = openDevice(process.env['RXE_LAB_DEVICE'] ?? 'rxe0');
const protectionDomain = device.allocateProtectionDomain();
const completionQueue = device.createCompletionQueue({ depth: 4 * RECEIVES });
const receiveRegion = protectionDomain.registerMemory(Buffer.alloc(RECEIVES * MESSAGE_BYTES));
const sendRegion = protectionDomain.registerMemory(Buffer.alloc(MESSAGE_BYTES));
const writeRegion = protectionDomain.registerMemory(Buffer.alloc(1 << 20), { remoteWrite: true });
const listener = listen({ address: process.env['RXE_LAB_ADDR'] ?? '192.0.2.1', port: Number(process.argv[2] ?? 0) });
console.log(`listening ${listener.port}`);

const { cmId } = await new Promise<{ cmId: import('../dist/index.js').CmId }>((resolve) => listener.once('connection', resolve));
const queuePair = cmId.createQueuePair({ protectionDomain, sendCompletionQueue: completionQueue, recvCompletionQueue: completionQueue, maxSendWr: 2 * RECEIVES, maxRecvWr: RECEIVES, maxInlineData: MESSAGE_BYTES });
for (let slot = 0; slot < RECEIVES; slot++) queuePair.postRecvOne(slot, receiveRegion, slot * MESSAGE_BYTES, MESSAGE_BYTES);
const advertisement = Buffer.alloc(12);
advertisement.writeBigUInt64BE(BigInt(writeRegion.address), 0);
advertisement.writeUInt32BE(writeRegion.rkey, 8);
await cmId.accept({ privateData: advertisement });
listener.close();

let running = true;
let sends = 0;
const signal = () => (++sends % SIGNAL_EVERY === 0 ? SEND_FLAG.SIGNALED : 0);

function serveBatched(): void {
  const batch = queuePair.createWorkBatch({ regions: [receiveRegion, sendRegion], completionQueue, capacity: 32, completionsMax: 16 });
  while (running) {
    const count = batch.submit(SPIN_MICROS);
    const words = batch.completions;
    for (let index = 0; index < count; index++) {
      const at = index * COMPLETION_WORDS;
      if (words[at + 2] !== 0) throw new Error(`completion failed with status ${words[at + 2]}`);
      if (words[at + 3] !== 128) continue;
      const slot = words[at]!;
      if (receiveRegion.buffer[slot * MESSAGE_BYTES] === 0x51 /* 'Q' */) running = false;
      // Echo straight from the receive slot. Reposting the slot at once is
      // safe here: Receives are consumed in order, so it is reused only
      // RECEIVES - 1 messages later, long after this Send completed.
      batch.send(1000, 0, slot * MESSAGE_BYTES, MESSAGE_BYTES, INLINE | signal());
      batch.receive(slot, 0, slot * MESSAGE_BYTES, MESSAGE_BYTES);
    }
  }
  batch.submit(-1);
  batch.close();
}

function serveWithCalls(): void {
const words = new Uint32Array(16 * COMPLETION_WORDS);
while (running) {
  const count = completionQueue.pollInto(words, 16, SPIN_MICROS);
  for (let index = 0; index < count; index++) {
    const at = index * COMPLETION_WORDS;
    if (words[at + 2] !== 0) throw new Error(`completion failed with status ${words[at + 2]}`);
    if (words[at + 3] !== 128) continue; // a Send completion: nothing to do
    const slot = words[at]!;
    if (receiveRegion.buffer[slot * MESSAGE_BYTES] === 0x51 /* 'Q' */) running = false;
    // Echo straight from the receive slot, as serveBatched does.
    queuePair.postSendOne(1000, receiveRegion, slot * MESSAGE_BYTES, MESSAGE_BYTES, INLINE | signal());
    queuePair.postRecvOne(slot, receiveRegion, slot * MESSAGE_BYTES, MESSAGE_BYTES);
  }
}
}

if (process.argv[3] === 'calls') serveWithCalls();
else serveBatched();
cmId.close();
for (const closable of [receiveRegion, sendRegion, writeRegion, completionQueue, protectionDomain, device]) closable.close();
