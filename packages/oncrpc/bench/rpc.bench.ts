/**
 * ONC RPC benchmarks, each against a baseline measured in the same run:
 *
 *  1. dispatch: Dispatcher.handleCall on a NULL call and a small call, against
 *     the floor any server pays: reading the header words with bare Buffer reads
 *     and allocating and filling a fixed accepted reply.
 *  2. TCP round trips on loopback, 1 and 16 calls outstanding: our client and
 *     server (NULL calls), against a raw record-marked echo over net.Socket
 *     with the same message sizes and the same depth.
 *
 * Prints the median of several runs and the ratio to the baseline.
 *   node bench/rpc.bench.ts
 */
import { createServer, connect, type Socket } from 'node:net';
import { XdrWriter, xdrUint, xdrVoid } from '@roce-rpc/xdr';
import { Dispatcher, OncRpcTcpClient, OncRpcTcpServer, authNone, defineProcedure, writeCallHeader } from '../dist/index.js';

const runs = 5;
const PROGRAM = 400999;
const NULL = defineProcedure('NULL', 0, xdrVoid, xdrVoid);
const DOUBLE = defineProcedure('DOUBLE', 1, xdrUint, xdrUint);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

function report(name: string, unit: string, measured: number[], baseline: number[]): void {
  const ours = median(measured);
  const base = median(baseline);
  console.log(`${name.padEnd(44)} ${Math.round(ours).toLocaleString('en').padStart(12)} ${unit}   baseline ${Math.round(base).toLocaleString('en').padStart(12)}   ratio ${(ours / base).toFixed(2)}`);
}

function callBytes(procedure: number, argument: number | null): Buffer {
  const writer = new XdrWriter();
  writeCallHeader(writer, { xid: 1, program: PROGRAM, version: 1, procedure, credential: authNone, verifier: authNone });
  if (argument !== null) writer.writeUint(argument);
  return writer.finish().toBuffer();
}

function perSecond(iterations: number, run: () => void): number {
  const started = process.hrtime.bigint();
  for (let index = 0; index < iterations; index++) run();
  return iterations / (Number(process.hrtime.bigint() - started) / 1e9);
}

function benchDispatch(dispatcher: Dispatcher): void {
  const iterations = 300_000;
  const nullCall = callBytes(0, null);
  const doubleCall = callBytes(1, 21);
  const context = { transport: 'bench' };
  let sink = 0;
  // The least any server does: read the header words, allocate and fill an accepted reply.
  const headerFloor = (bytes: Buffer) => () => {
    for (let offset = 0; offset + 4 <= bytes.length; offset += 4) sink ^= bytes.readUInt32BE(offset);
    const reply = Buffer.allocUnsafe(28);
    reply.writeUInt32BE(bytes.readUInt32BE(0), 0);
    for (let offset = 4; offset < 28; offset += 4) reply.writeUInt32BE(offset === 4 ? 1 : 0, offset);
    sink ^= reply[0]!;
  };
  for (const [name, bytes] of [['dispatch NULL call (calls/s)', nullCall], ['dispatch DOUBLE(uint) call (calls/s)', doubleCall]] as const) {
    const measured: number[] = [];
    const baseline: number[] = [];
    for (let run = 0; run < runs; run++) {
      measured.push(perSecond(iterations, () => void dispatcher.handleCall(bytes, context)));
      baseline.push(perSecond(iterations, headerFloor(bytes)));
    }
    report(name, 'calls/s', measured, baseline);
  }
  if (sink === 0.5) console.log(sink);
}

/** Raw baseline: a server that echoes each record-marked message back unchanged. */
async function startEchoServer(): Promise<{ port: number; close(): void }> {
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('data', (chunk) => socket.write(chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, close: () => server.close() };
}

/** Sends `count` record-marked messages keeping `depth` outstanding; counts full replies by length. */
async function rawRoundTrips(port: number, message: Buffer, count: number, depth: number): Promise<number> {
  const socket: Socket = await new Promise((resolve) => {
    const created = connect({ port, host: '127.0.0.1' }, () => resolve(created));
  });
  socket.setNoDelay(true);
  const framed = Buffer.concat([Buffer.from([0x80, 0, 0, message.length]), message]);
  let sent = 0;
  let received = 0;
  let pendingBytes = 0;
  const started = process.hrtime.bigint();
  await new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      pendingBytes += chunk.length;
      while (pendingBytes >= framed.length) {
        pendingBytes -= framed.length;
        received++;
        if (sent < count) {
          socket.write(framed);
          sent++;
        }
      }
      if (received === count) resolve();
    });
    for (; sent < depth; sent++) socket.write(framed);
  });
  socket.destroy();
  return count / (Number(process.hrtime.bigint() - started) / 1e9);
}

async function ourRoundTrips(client: OncRpcTcpClient, count: number, depth: number): Promise<number> {
  const started = process.hrtime.bigint();
  let issued = 0;
  const lane = async (): Promise<void> => {
    while (issued < count) {
      issued++;
      await client.call(PROGRAM, 1, NULL, undefined);
    }
  };
  await Promise.all(Array.from({ length: depth }, lane));
  return count / (Number(process.hrtime.bigint() - started) / 1e9);
}

async function benchTcp(dispatcher: Dispatcher): Promise<void> {
  const server = new OncRpcTcpServer(dispatcher);
  const { port } = await server.listen();
  const echo = await startEchoServer();
  const client = await OncRpcTcpClient.connect({ port });
  const nullCall = callBytes(0, null);
  const count = 20_000;
  for (const depth of [1, 16]) {
    const measured: number[] = [];
    const baseline: number[] = [];
    for (let run = 0; run < runs; run++) {
      measured.push(await ourRoundTrips(client, count, depth));
      baseline.push(await rawRoundTrips(echo.port, nullCall, count, depth));
    }
    report(`TCP NULL round trips, ${depth} outstanding`, 'calls/s', measured, baseline);
  }
  await client.close();
  await server.close();
  echo.close();
}

const dispatcher = new Dispatcher();
dispatcher.addVersion(PROGRAM, { name: 'V1', version: 1, procedures: [NULL, DOUBLE] }, { NULL: () => {}, DOUBLE: (value: number) => value * 2 });
console.log(`median of ${runs} runs; baselines: bare header reads + fixed reply (dispatch), raw record echo over net.Socket (TCP)`);
benchDispatch(dispatcher);
await benchTcp(dispatcher);
