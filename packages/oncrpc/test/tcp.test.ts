/**
 * The TCP transport end to end on loopback: our client against our server,
 * and raw sockets playing misbehaving peers.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { xdrUint, xdrVoid } from '@roce-rpc/xdr';
import {
  AuthFlavor,
  Dispatcher,
  OncRpcTcpClient,
  OncRpcTcpServer,
  OncRpcErrorCode,
  defineProcedure,
  encodeAuthSys,
  type RpcCall,
  type TcpCallContext,
} from '../src/index.js';
import { rawCall, uints } from './helpers.js';

const PROGRAM = 400200;
const DOUBLE = defineProcedure('DOUBLE', 1, xdrUint, xdrUint);
const GATED = defineProcedure('GATED', 2, xdrUint, xdrUint);
const UID = defineProcedure('UID', 3, xdrVoid, xdrUint);
const MISSING = defineProcedure('MISSING', 9, xdrVoid, xdrVoid);
const version = { name: 'V1', version: 1, procedures: [DOUBLE, GATED, UID] } as const;

/** Calls to GATED wait here until the test opens the gate. */
class Gate {
  private waiting: (() => void)[] = [];
  active = 0;
  peak = 0;
  enter(): Promise<void> {
    this.active++;
    this.peak = Math.max(this.peak, this.active);
    return new Promise((resolve) => this.waiting.push(() => ((this.active -= 1), resolve())));
  }
  openAll(): void {
    for (const release of this.waiting.splice(0)) release();
  }
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startServer(options: ConstructorParameters<typeof OncRpcTcpServer>[1] = {}) {
  const gate = new Gate();
  const dispatcher = new Dispatcher<TcpCallContext>();
  dispatcher.addVersion(PROGRAM, version, {
    DOUBLE: async (value) => {
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
      return value * 2;
    },
    GATED: async (value) => {
      await gate.enter();
      return value;
    },
    UID: (_argument: void, call: RpcCall<TcpCallContext>) => ('sys' in call.credential ? call.credential.sys.uid : 0xffff_ffff),
  });
  const server = new OncRpcTcpServer(dispatcher, options);
  const { port } = await server.listen();
  cleanups.push(() => server.close());
  return { server, port, gate };
}

async function startClient(port: number, options: Partial<Parameters<typeof OncRpcTcpClient.connect>[0]> = {}) {
  const client = await OncRpcTcpClient.connect({ port, ...options });
  cleanups.push(() => client.close());
  return client;
}

function rawSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' }, () => resolve(socket));
    socket.on('error', reject);
    cleanups.push(() => void socket.destroy());
  });
}

function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
}

describe('calls over one connection', () => {
  test('many concurrent calls with out-of-order replies each get their own result', async () => {
    const { port } = await startServer();
    const client = await startClient(port);
    const values = Array.from({ length: 100 }, (_, index) => index);
    const results = await Promise.all(values.map((value) => client.call(PROGRAM, 1, DOUBLE, value)));
    expect(results).toEqual(values.map((value) => value * 2));
    expect(client.callsInFlight).toBe(0);
  });

  test('rejected calls surface the reply status as an error code, with the version range', async () => {
    const { port } = await startServer();
    const client = await startClient(port);
    await expect(client.call(PROGRAM, 7, DOUBLE, 1)).rejects.toMatchObject({ code: OncRpcErrorCode.PROG_MISMATCH, details: { low: 1, high: 1 } });
    await expect(client.call(PROGRAM, 1, MISSING, undefined)).rejects.toMatchObject({ code: OncRpcErrorCode.PROC_UNAVAIL });
    await expect(client.call(PROGRAM + 1, 1, DOUBLE, 1)).rejects.toMatchObject({ code: OncRpcErrorCode.PROG_UNAVAIL });
    await expect(client.call(PROGRAM, 1, DOUBLE, 5)).resolves.toBe(10);
  });

  test('an AUTH_SYS credential reaches the handler', async () => {
    const { port } = await startServer();
    const client = await startClient(port);
    client.credential = encodeAuthSys({ stamp: 1, machineName: 'lab', uid: 4242, gid: 42, gids: [1, 2] });
    expect(client.credential.flavor).toBe(AuthFlavor.AUTH_SYS);
    await expect(client.call(PROGRAM, 1, UID, undefined)).resolves.toBe(4242);
  });
});

describe('bounds and timeouts', () => {
  test('the server serves at most maxInFlightCallsPerConnection calls of a connection at once', async () => {
    const { port, gate } = await startServer({ maxInFlightCallsPerConnection: 2 });
    const client = await startClient(port);
    const calls = Array.from({ length: 6 }, (_, index) => client.call(PROGRAM, 1, GATED, index));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(gate.active).toBe(2);
    for (let round = 0; round < 3; round++) {
      gate.openAll();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await Promise.all(calls)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(gate.peak).toBe(2);
  });

  test('the client refuses calls beyond maxInFlightCalls', async () => {
    const { port, gate } = await startServer();
    const client = await startClient(port, { maxInFlightCalls: 2 });
    const first = client.call(PROGRAM, 1, GATED, 1);
    const second = client.call(PROGRAM, 1, GATED, 2);
    await expect(client.call(PROGRAM, 1, GATED, 3)).rejects.toMatchObject({ code: OncRpcErrorCode.TOO_MANY_CALLS });
    await new Promise((resolve) => setTimeout(resolve, 20));
    gate.openAll();
    expect(await Promise.all([first, second])).toEqual([1, 2]);
  });

  test('a call without a reply times out; its late reply is counted and dropped', async () => {
    const { port, gate } = await startServer();
    const client = await startClient(port);
    await expect(client.call(PROGRAM, 1, GATED, 1, { timeoutMs: 30 })).rejects.toMatchObject({ code: OncRpcErrorCode.TIMEOUT });
    gate.openAll();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(client.metrics.timeouts).toBe(1);
    expect(client.metrics.lateReplies).toBe(1);
    await expect(client.call(PROGRAM, 1, DOUBLE, 2)).resolves.toBe(4);
  });

  test('calls pending when the server goes away fail with ERR_ONCRPC_CONNECTION_CLOSED', async () => {
    const { port, server } = await startServer();
    const client = await startClient(port);
    const pending = client.call(PROGRAM, 1, GATED, 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await server.close();
    await expect(pending).rejects.toMatchObject({ code: OncRpcErrorCode.CONNECTION_CLOSED });
    await expect(client.call(PROGRAM, 1, DOUBLE, 1)).rejects.toMatchObject({ code: OncRpcErrorCode.CONNECTION_CLOSED });
  });

  test('connections beyond maxConnections are refused', async () => {
    const { port, server } = await startServer({ maxConnections: 1 });
    await startClient(port);
    const second = await rawSocket(port);
    await closed(second);
    expect(server.metrics.connectionsRefused).toBe(1);
  });
});

describe('misbehaving peers', () => {
  test('a call sent as byte-sized writes of three fragments is answered', async () => {
    const { port } = await startServer();
    const socket = await rawSocket(port);
    const call = rawCall({ xid: 7, program: PROGRAM, version: 1, procedure: 1, argument: uints(8) });
    const pieces = [call.subarray(0, 10), call.subarray(10, 30), call.subarray(30)];
    const stream = Buffer.concat(
      pieces.map((piece, index) => Buffer.concat([uints(((index === 2 ? 0x8000_0000 : 0) | piece.length) >>> 0), piece])),
    );
    const reply = new Promise<Buffer>((resolve) => socket.once('data', resolve));
    for (const byte of stream) socket.write(Buffer.from([byte]));
    const bytes = await reply;
    expect(bytes.toString('hex')).toBe('8000001c' + '00000007' + '00000001' + '00000000' + '0000000000000000' + '00000000' + '00000010');
  });

  test('a client that sends its calls then shuts down its side still gets every reply', async () => {
    const { port } = await startServer();
    const socket = await rawSocket(port);
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    const calls = [1, 2, 3].map((value) => rawCall({ xid: value, program: PROGRAM, version: 1, procedure: 1, argument: uints(value) }));
    socket.end(Buffer.concat(calls.map((call) => Buffer.concat([uints(0x8000_0000 | call.length), call]))));
    await closed(socket);
    const stream = Buffer.concat(received);
    expect(stream.length).toBe(3 * 32);
    const results = [0, 1, 2].map((index) => [stream.readUInt32BE(index * 32 + 4), stream.readUInt32BE(index * 32 + 28)]);
    expect(results.sort((a, b) => a[0]! - b[0]!)).toEqual([[1, 2], [2, 4], [3, 6]]);
  });

  test('a dispatcher bug costs only its connection, counted as an internal error', async () => {
    const broken = { handleCall: () => { throw new Error('bug'); } } as unknown as Dispatcher<TcpCallContext>;
    const server = new OncRpcTcpServer(broken);
    const { port } = await server.listen();
    cleanups.push(() => server.close());
    const socket = await rawSocket(port);
    const call = rawCall({ program: PROGRAM, version: 1, procedure: 1, argument: uints(1) });
    socket.write(Buffer.concat([uints(0x8000_0000 | call.length), call]));
    await closed(socket);
    expect(server.metrics.internalErrors).toBe(1);
  });

  test('a record over maxRecordBytes closes that connection and no other', async () => {
    const { port, server } = await startServer({ maxRecordBytes: 1024 });
    const client = await startClient(port);
    const socket = await rawSocket(port);
    socket.write(uints(0x8000_0000 | 4096));
    await closed(socket);
    expect(server.metrics.badRecords).toBe(1);
    await expect(client.call(PROGRAM, 1, DOUBLE, 3)).resolves.toBe(6);
  });

  test('a stream that ends inside a record is counted and the connection closed', async () => {
    const { port, server } = await startServer();
    const socket = await rawSocket(port);
    const call = rawCall({ program: PROGRAM, version: 1, procedure: 1, argument: uints(1) });
    socket.end(Buffer.concat([uints(0x8000_0000 | call.length), call.subarray(0, 12)]));
    await closed(socket);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(server.metrics.truncatedStreams).toBe(1);
    expect(server.connectionCount).toBe(0);
  });

  test('garbage records get error replies or are dropped, and the connection keeps serving', async () => {
    const { port } = await startServer();
    const socket = await rawSocket(port);
    const replies: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => replies.push(chunk));
    const garbage = Buffer.from('deadbeef', 'hex');
    const good = rawCall({ xid: 9, program: PROGRAM, version: 1, procedure: 1, argument: uints(1) });
    socket.write(Buffer.concat([uints(0x8000_0000 | garbage.length), garbage, uints(0x8000_0000 | good.length), good]));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const all = Buffer.concat(replies);
    expect(all.readUInt32BE(4)).toBe(9);
    expect(all.readUInt32BE(all.length - 4)).toBe(2);
  });
});

describe('closing a server', () => {
  test('stopAccepting refuses new connections while open ones are still served', async () => {
    const { server, port } = await startServer();
    const client = await startClient(port);
    server.stopAccepting();
    server.stopAccepting();
    await expect(rawSocket(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(await client.call(PROGRAM, 1, DOUBLE, 21)).toBe(42);
  });

  test('close({ drainMs }) answers the calls in flight, starts no new ones, then closes', async () => {
    const { server, port, gate } = await startServer();
    const client = await startClient(port);
    const inFlight = client.call(PROGRAM, 1, GATED, 7);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(gate.active).toBe(1);
    const closing = server.close({ drainMs: 5_000 });
    const late = client.call(PROGRAM, 1, DOUBLE, 2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(server.connectionCount).toBe(1);
    gate.openAll();
    expect(await inFlight).toBe(7);
    await expect(late).rejects.toMatchObject({ code: OncRpcErrorCode.CONNECTION_CLOSED });
    expect(await closing).toEqual({ unfinishedCalls: 0 });
    expect(server.connectionCount).toBe(0);
  });

  test('close({ drainMs }) destroys connections whose calls outlast the drain and counts those calls', async () => {
    const { server, port, gate } = await startServer();
    const client = await startClient(port);
    const stuck = [client.call(PROGRAM, 1, GATED, 1), client.call(PROGRAM, 1, GATED, 2)];
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = performance.now();
    expect(await server.close({ drainMs: 200 })).toEqual({ unfinishedCalls: 2 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
    for (const call of stuck) await expect(call).rejects.toMatchObject({ code: OncRpcErrorCode.CONNECTION_CLOSED });
    gate.openAll();
  });

  test('close() rejects a drainMs that is not a non-negative integer, naming it', async () => {
    const { server } = await startServer();
    await expect(server.close({ drainMs: -1 })).rejects.toThrow(/drainMs/);
  });

  test('onConnection sees each accepted peer and its close, not the refused ones', async () => {
    const { server, port } = await startServer({ maxConnections: 1 });
    const events: string[] = [];
    server.onConnection((peer) => {
      events.push(`opened ${peer.remoteAddress}:${peer.remotePort}`);
      return () => events.push(`closed ${peer.remotePort}`);
    });
    const first = await rawSocket(port);
    const firstPort = first.localPort;
    await new Promise((resolve) => setTimeout(resolve, 50));
    const refused = await rawSocket(port);
    await closed(refused);
    first.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(events).toEqual([`opened 127.0.0.1:${firstPort}`, `closed ${firstPort}`]);
    expect(server.metrics.connectionsRefused).toBe(1);
  });
});
