import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RxClient, RxServer, type ClientConnection } from '../dist/index.js';

const serviceModule = new URL('../dist/bench/bench-service.js', import.meta.url);

function opcode(op: number, ...words: number[]): Uint8Array {
  const bytes = new Uint8Array(4 + words.length * 4);
  const view = new DataView(bytes.buffer);
  view.setInt32(0, op);
  words.forEach((word, index) => view.setUint32(4 + index * 4, word));
  return bytes;
}

describe('a call travels from our client through the endpoint to a channel worker and back', () => {
  let server: RxServer;
  let client: RxClient;
  let connection: ClientConnection;
  beforeAll(async () => {
    server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 2 });
    client = await RxClient.open();
    connection = client.connect('127.0.0.1', server.port, 42);
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it('answers Null with an empty reply', async () => {
    const reply = await connection.call(opcode(1));
    expect(reply.byteLength).toBe(0);
  });

  it('echoes a multi-packet argument byte for byte', async () => {
    const payload = new Uint8Array(20_000).map((_, index) => (index * 7) & 0xff);
    const request = new Uint8Array(8 + payload.byteLength);
    new DataView(request.buffer).setInt32(0, 2);
    new DataView(request.buffer).setUint32(4, payload.byteLength);
    request.set(payload, 8);
    const reply = await connection.call(request);
    expect(reply.byteLength).toBe(4 + payload.byteLength);
    expect(Buffer.from(reply.subarray(4)).equals(Buffer.from(payload))).toBe(true);
  });
});
