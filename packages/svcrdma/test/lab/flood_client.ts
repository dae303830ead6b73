/**
 * A flooding client in its own process (its own event loop), for
 * threads.test.ts: keeps DEPTH NULL calls outstanding on one connection until
 * stdin closes, then prints `{ calls, median, worst }` (ms) as JSON.
 * Usage: node flood_client.ts ADDRESS PORT PROGRAM VERSION DEPTH
 */
import { xdrVoid } from '@roce-rpc/xdr';
import { RdmaRpcClient } from '../../dist/index.js';

const [address, port, program, version, depth] = process.argv.slice(2);
const client = await RdmaRpcClient.connect({ address: address!, port: Number(port), timeoutMs: 60_000 });
let flooding = true;
const times: number[] = [];
const lane = async (): Promise<void> => {
  while (flooding) {
    const begin = performance.now();
    await client.call(Number(program), Number(version), 0, xdrVoid, undefined, xdrVoid);
    times.push(performance.now() - begin);
  }
};
const lanes = Array.from({ length: Number(depth) }, lane);
process.stdout.write('flooding\n');
process.stdin.resume();
process.stdin.on('end', async () => {
  flooding = false;
  await Promise.all(lanes);
  await client.close();
  times.sort((a, b) => a - b);
  process.stdout.write(`${JSON.stringify({ calls: times.length, median: times[times.length >> 1] ?? 0, worst: times.at(-1) ?? 0 })}\n`);
});
