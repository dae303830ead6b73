/**
 * RxServer.onConnection: the routing thread announces each server connection
 * it creates and calls the listener's callback when that connection is reaped.
 */
import { describe, expect, it } from 'vitest';
import { RxClient, RxServer, type RxConnectionInfo } from '../dist/index.js';
import { BENCH_PACKAGE } from '../dist/generated/bench.js';

const serviceModule = new URL('../dist/bench/bench-service.js', import.meta.url);
const [Null] = BENCH_PACKAGE.procedures;

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition() && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe('RxServer.onConnection', () => {
  it('announces a connection once with its peer, epoch and cid, and calls back when it is reaped idle', async () => {
    const server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 0, connectionIdleMs: 400 });
    const client = await RxClient.open();
    try {
      const opened: RxConnectionInfo[] = [];
      const closed: RxConnectionInfo[] = [];
      server.onConnection((info) => {
        opened.push(info);
        return () => closed.push(info);
      });
      const connection = client.connect('127.0.0.1', server.port, 42);
      for (let index = 0; index < 3; index++) await connection.invoke(Null!, {});
      expect(opened).toHaveLength(1);
      expect(opened[0]).toMatchObject({ peerAddress: '127.0.0.1', peerPort: client.localPort, epoch: client.epoch, cid: connection.connection.info.cid, serviceId: 42 });
      expect(closed).toHaveLength(0);
      await until(() => closed.length > 0, 5_000);
      expect(closed).toEqual(opened);
      expect((await server.stats()).connections).toBe(0);
    } finally {
      await client.close();
      await server.close();
    }
  });

  it('calls back for the connections still open when the server closes, and survives a listener that throws', async () => {
    const server = await RxServer.listen({ serviceModule, address: '127.0.0.1', workers: 0 });
    const clients = [await RxClient.open(), await RxClient.open()];
    let serverClosed = false;
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning.message);
    process.on('warning', onWarning);
    try {
      let closedCount = 0;
      let announced = 0;
      server.onConnection(() => {
        announced += 1;
        if (announced === 1) throw new Error('listener bug');
        return () => (closedCount += 1);
      });
      for (const client of clients) await client.connect('127.0.0.1', server.port, 42).invoke(Null!, {});
      expect(announced).toBe(2);
      await server.close();
      serverClosed = true;
      // The connection whose listener threw registered no callback; the other one is called back.
      expect(closedCount).toBe(1);
      await until(() => warnings.length > 0, 1_000);
      expect(warnings.some((message) => message.includes('listener bug'))).toBe(true);
    } finally {
      process.off('warning', onWarning);
      for (const client of clients) await client.close();
      if (!serverClosed) await server.close();
    }
  });
});
