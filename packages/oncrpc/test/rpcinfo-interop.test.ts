/**
 * Interop with code no one here wrote: Debian's rpcinfo pings our TCP server,
 * and Debian's rpcbind takes our registrations. When nothing listens on port
 * 111 a throw-away rpcbind is started for this file and stopped after it; if
 * one is already running (another test, the host), it is used as it is.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { xdrUint } from '@roce-rpc/xdr';
import {
  Dispatcher,
  OncRpcTcpServer,
  RpcbindClient,
  defineProcedure,
  parseUniversalAddress,
  registerTcpService,
  universalAddress,
} from '../src/index.js';

const PROGRAM = 400377;
const procedures = [defineProcedure('DOUBLE', 1, xdrUint, xdrUint)];
const rpcinfoTimeoutMs = 10_000;

let dispatcher: Dispatcher;
let server: OncRpcTcpServer;
let port: number;
let rpcbind: ChildProcess | null = null;

function rpcinfo(...args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('rpcinfo', args, { timeout: rpcinfoTimeoutMs }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

function portOpen(target: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port: target, host: '127.0.0.1' }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

async function ensureRpcbind(): Promise<void> {
  if (await portOpen(111)) return;
  rpcbind = spawn('rpcbind', ['-f'], { stdio: 'ignore' });
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await portOpen(111)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('rpcbind did not start listening on port 111');
}

beforeAll(async () => {
  dispatcher = new Dispatcher();
  dispatcher.addVersion(PROGRAM, { name: 'V2', version: 2, procedures }, { DOUBLE: (value) => value * 2 });
  dispatcher.addVersion(PROGRAM, { name: 'V3', version: 3, procedures }, { DOUBLE: (value) => value * 2 });
  server = new OncRpcTcpServer(dispatcher);
  port = (await server.listen()).port;
});

afterAll(async () => {
  await server.close();
  if (rpcbind !== null) {
    const exited = new Promise((resolve) => rpcbind!.once('exit', resolve));
    rpcbind.kill('SIGTERM');
    await exited;
  }
});

describe('rpcinfo against our server, addressed directly', () => {
  test('rpcinfo -a <uaddr> -T tcp reaches each version\'s NULL procedure', async () => {
    const address = universalAddress('127.0.0.1', port);
    const result = await rpcinfo('-a', address, '-T', 'tcp', String(PROGRAM), '3');
    expect(result.output).toContain(`program ${PROGRAM} version 3 ready and waiting`);
    expect(result.code).toBe(0);
  });

  test('without a version, rpcinfo learns the range from our PROG_MISMATCH and pings each version', async () => {
    const result = await rpcinfo('-a', universalAddress('127.0.0.1', port), '-T', 'tcp', String(PROGRAM));
    expect(result.output).toContain(`program ${PROGRAM} version 2 ready and waiting`);
    expect(result.output).toContain(`program ${PROGRAM} version 3 ready and waiting`);
  });
});

describe('registered with rpcbind', () => {
  let unregister: () => Promise<void>;

  beforeAll(async () => {
    await ensureRpcbind();
    unregister = await registerTcpService(dispatcher, { host: '127.0.0.1', port });
  });

  test('rpcbind v4 GETADDR and portmapper GETPORT give our address back', async () => {
    const client = await RpcbindClient.connect();
    try {
      const address = await client.getAddress(PROGRAM, 3, 'tcp');
      expect(parseUniversalAddress(address)).toEqual({ host: '127.0.0.1', port });
      expect(await client.pmapGetPort(PROGRAM, 2)).toBe(port);
    } finally {
      await client.close();
    }
  });

  test('rpcinfo -t 127.0.0.1 <prog> <vers> succeeds', async () => {
    const result = await rpcinfo('-t', '127.0.0.1', String(PROGRAM), '2');
    expect(result.output).toContain(`program ${PROGRAM} version 2 ready and waiting`);
    expect(result.code).toBe(0);
  });

  test('rpcinfo -T tcp 127.0.0.1 <prog> <vers> succeeds', async () => {
    const result = await rpcinfo('-T', 'tcp', '127.0.0.1', String(PROGRAM), '3');
    expect(result.output).toContain(`program ${PROGRAM} version 3 ready and waiting`);
    expect(result.code).toBe(0);
  });

  test('after unregistering, rpcbind no longer knows the program', async () => {
    await unregister();
    const client = await RpcbindClient.connect();
    try {
      expect(await client.getAddress(PROGRAM, 3, 'tcp')).toBe('');
      expect(await client.pmapGetPort(PROGRAM, 2)).toBe(0);
    } finally {
      await client.close();
    }
    const result = await rpcinfo('-t', '127.0.0.1', String(PROGRAM), '2');
    expect(result.code).not.toBe(0);
  });
});
