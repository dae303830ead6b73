// The verbs core moving data over a real rxe device, in one process:
// a server and a client connect over rdma_cm on rxe0, the client Sends a
// message, RDMA Writes into the server's buffer and RDMA Reads it back.
// Run it in the lab: `./run start` or `pnpm lab -- node packages/verbs/examples/demo.mjs`.
import { connect, listen, liveObjects, openDevice } from '@roce-rpc/verbs';

const deviceName = process.env.RXE_LAB_DEVICE ?? 'rxe0';
const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';

const device = openDevice(deviceName);
const attributes = device.query();
console.log(`device ${attributes.name}: maxQp ${attributes.maxQp}, maxMrSize ${attributes.maxMrSize}, port state ${attributes.portState}`);
const pd = device.allocateProtectionDomain();

/** A threaded CQ whose completions resolve per-wrId promises. */
function completionQueue() {
  const waiting = new Map();
  const cq = device.createCompletionQueue({
    depth: 64,
    onCompletions(completions) {
      for (const completion of completions) {
        const settle = waiting.get(completion.wrId);
        waiting.delete(completion.wrId);
        settle?.(completion);
      }
    },
  });
  const completion = (wrId) => new Promise((resolve) => waiting.set(wrId, resolve));
  return { cq, completion };
}

const server = completionQueue();
const client = completionQueue();
const serverBuffer = Buffer.alloc(4096);
const serverRegion = pd.registerMemory(serverBuffer, { remoteWrite: true, remoteRead: true });
const clientBuffer = Buffer.alloc(4096);
const clientRegion = pd.registerMemory(clientBuffer);

const listener = listen({ address, port: 0 });
const accepted = new Promise((resolve) => {
  listener.on('connection', async ({ cmId }) => {
    const queuePair = cmId.createQueuePair({ protectionDomain: pd, sendCompletionQueue: server.cq, recvCompletionQueue: server.cq });
    queuePair.postRecv(1, [serverRegion.sge(0, 256)]);
    await cmId.accept();
    resolve(cmId);
  });
});

const started = performance.now();
const clientId = await connect({
  address,
  port: listener.port,
  createQueuePair: (cmId) =>
    cmId.createQueuePair({ protectionDomain: pd, sendCompletionQueue: client.cq, recvCompletionQueue: client.cq }),
});
const serverId = await accepted;
console.log(`connected ${clientId.localAddress.address}:${clientId.localAddress.port} -> ${address}:${listener.port} in ${(performance.now() - started).toFixed(1)} ms`);

const message = 'hello over rxe';
clientBuffer.write(message);
const received = server.completion(1);
clientId.queuePair.postSend({ wrId: 10, sges: [clientRegion.sge(0, message.length)] });
const [sent, arrived] = await Promise.all([client.completion(10), received]);
console.log(`send ${sent.status}, recv ${arrived.status} ${arrived.byteLength} B: "${serverBuffer.subarray(0, arrived.byteLength)}"`);

const pattern = Buffer.from('written by RDMA Write, read back by RDMA Read');
pattern.copy(clientBuffer, 1024);
clientId.queuePair.postRdmaWrite({ wrId: 11, sges: [clientRegion.sge(1024, pattern.length)], remoteAddress: serverRegion.address + 2048, rkey: serverRegion.rkey });
console.log(`rdma write ${(await client.completion(11)).status}: server sees "${serverBuffer.subarray(2048, 2048 + pattern.length)}"`);
clientId.queuePair.postRdmaRead({ wrId: 12, sges: [clientRegion.sge(3072, pattern.length)], remoteAddress: serverRegion.address + 2048, rkey: serverRegion.rkey });
console.log(`rdma read ${(await client.completion(12)).status}: client reads "${clientBuffer.subarray(3072, 3072 + pattern.length)}"`);

const disconnected = new Promise((resolve) => serverId.once('disconnected', resolve));
clientId.disconnect();
await disconnected;
console.log('disconnected');
clientId.close();
serverId.close();
listener.close();
for (const closable of [serverRegion, clientRegion, server.cq, client.cq, pd, device]) closable.close();
console.log('open native handles after close:', JSON.stringify(liveObjects()));
