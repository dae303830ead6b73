/**
 * Data movement between two Node processes over rxe: this process is the
 * client, `peers/echo_server.ts` runs in its own process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, ErrorCode, liveObjects, type Device, type ProtectionDomain } from '../../dist/index.js';
import { CompletionRouter, EchoClient, LAB_ADDRESS, MESSAGE_MAX, openLab, pattern, REGION_LENGTH, REGION_SEED, sha256 } from './support.ts';
import { startPeer, type Peer } from './process.ts';

let server: Peer;
let port: number;
let device: Device;
let protectionDomain: ProtectionDomain;
let client: EchoClient;

beforeAll(async () => {
  server = startPeer('echo_server.ts', ['0']);
  port = Number((await server.line(/^listening (\d+)$/))[1]);
  ({ device, protectionDomain } = openLab());
  client = await EchoClient.connect(device, protectionDomain, port);
});

afterAll(async () => {
  client?.close();
  protectionDomain?.close();
  device?.close();
  server?.child.kill('SIGTERM');
  await server?.exited;
});

describe('Send/Receive between two processes', () => {
  it('echoes payloads byte-exact from 1 B to 1 MiB', async () => {
    const sizes = [1, 2, 63, 64, 65, 4095, 4096, 4097, 65_536, 262_143, MESSAGE_MAX];
    for (const size of sizes) {
      const message = pattern(size, size);
      message[0] = 0x45; // 'E'
      const reply = await client.request(message);
      expect(reply.length, `size ${size}`).toBe(size);
      expect(reply.equals(message), `size ${size} byte-exact`).toBe(true);
    }
  });

  it('completes 500 threaded-CQ ping-pongs in order (10 000 polled ones: pingpong.test.ts)', async () => {
    const rounds = 500;
    const message = Buffer.alloc(64);
    message[0] = 0x45;
    let completed = 0;
    for (let round = 0; round < rounds; round++) {
      message.writeUInt32BE(round, 4);
      const reply = await client.request(message);
      if (reply.length !== 64 || reply.readUInt32BE(4) !== round) throw new Error(`round ${round}: wrong reply`);
      completed++;
    }
    expect(completed).toBe(rounds);
  });
});

describe('RDMA Write and Read into the peer process', () => {
  it('reads the peer region byte for byte as the peer filled it', async () => {
    const expected = pattern(REGION_SEED, REGION_LENGTH);
    const completion = await client.read(0, REGION_LENGTH, 0);
    expect(completion).toMatchObject({ status: 'IBV_WC_SUCCESS', opcode: 'IBV_WC_RDMA_READ' });
    expect(client.receiveRegion.buffer.subarray(0, REGION_LENGTH).equals(expected)).toBe(true);
  });

  it('writes into the peer region, which the peer digests, and reads it back', async () => {
    const written = pattern(99, 300_000);
    written.copy(client.sendRegion.buffer, 0);
    const completion = await client.write(0, written.length, 12_345);
    expect(completion).toMatchObject({ status: 'IBV_WC_SUCCESS', opcode: 'IBV_WC_RDMA_WRITE' });
    expect((await client.remoteDigest(12_345, written.length)).equals(sha256(written))).toBe(true);
    await client.read(12_345, written.length, 4096);
    expect(client.receiveRegion.buffer.subarray(4096, 4096 + written.length).equals(written)).toBe(true);
  });

  it('an RDMA Write beyond the peer region completes with a remote access error, not a crash', async () => {
    // The error moves the QP to the error state: use a connection of its own.
    const doomed = await EchoClient.connect(device, protectionDomain, port);
    const completion = await doomed.write(0, 4096, REGION_LENGTH - 100);
    expect(completion.ok).toBe(false);
    expect(completion.status).toBe('IBV_WC_REM_ACCESS_ERR');
    doomed.close();
  });
});

describe('misuse surfaces as errors with codes', () => {
  it('an SGE outside its memory region throws EINVAL and posts nothing', async () => {
    const fresh = await EchoClient.connect(device, protectionDomain, port);
    const region = fresh.sendRegion;
    expect(() => fresh.queuePair.postSend({ wrId: 1, sges: [region.sge(MESSAGE_MAX - 10, 11)] })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => fresh.queuePair.postRecv(2, [region.sge(-1, 10)])).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    // The connection still works afterwards.
    const message = Buffer.from('Estill fine');
    expect((await fresh.request(message)).equals(message)).toBe(true);
    fresh.close();
  });

  it('posting on a closed queue pair throws ERR_VERBS_CLOSED', async () => {
    const fresh = await EchoClient.connect(device, protectionDomain, port);
    fresh.close();
    expect(() => fresh.queuePair.postSend({ wrId: 1, sges: [] })).toThrow(expect.objectContaining({ code: ErrorCode.CLOSED }));
  });

  it('closing a protection domain or CQ still in use throws EBUSY and changes nothing', async () => {
    const router = new CompletionRouter(device, 8);
    const region = protectionDomain.registerMemory(Buffer.alloc(64));
    expect(() => protectionDomain.close()).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    region.close();
    expect(() => client.router.completionQueue.close()).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    router.completionQueue.close();
    const message = Buffer.from('Estill serving');
    expect((await client.request(message)).equals(message)).toBe(true);
  });

  it('connecting to a port nobody listens on rejects with ECONNREFUSED', async () => {
    const router = new CompletionRouter(device, 8);
    const attempt = connect({
      address: LAB_ADDRESS,
      port: 1,
      createQueuePair: (cmId) =>
        cmId.createQueuePair({ protectionDomain, sendCompletionQueue: router.completionQueue, recvCompletionQueue: router.completionQueue }),
    });
    await expect(attempt).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    router.completionQueue.close();
  });
});

describe('teardown', () => {
  it('leaves only the shared client objects open', () => {
    expect(liveObjects()).toEqual({ CmId: 1, CompletionQueue: 1, Device: 1, EventChannel: 1, MemoryRegion: 2, ProtectionDomain: 1, QueuePair: 1 });
  });
});
