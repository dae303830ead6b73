/**
 * `pnpm bench:datagram`: A/B of the two datagram transports under an echo
 * server — node:dgram against the native recvmmsg/sendmmsg socket — to
 * decide whether the native path pays before RxRPC relies on it.
 *
 * The echo server runs in a child process (one per sample) so its CPU time
 * (process.cpuUsage: user + system) is its own; a node:dgram client in this
 * process keeps `--window` 28-byte datagrams (an RxRPC header's size) in
 * flight until `--pairs` round trips are done. Prints the server's CPU µs per
 * datagram pair (one received, one sent) and the pairs/s, medians of
 * `--repeats` samples taken in turns, and their ratios.
 *
 *   node dist/bench/datagram-ab.js [--pairs 40000] [--window 4] [--repeats 5]
 *   node dist/bench/datagram-ab.js --echo native|dgram      (the child)
 */
import { fork, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NativeDatagramSocket } from '../endpoint/native-datagram-socket.js';

const DATAGRAM_BYTES = 28;
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

const { values: flags } = parseArgs({
  options: {
    echo: { type: 'string' },
    pairs: { type: 'string', default: '40000' },
    window: { type: 'string', default: '4' },
    repeats: { type: 'string', default: '5' },
  },
});

type Transport = 'dgram' | 'native';

interface EchoReport {
  cpuMicros: number;
}

/** The child: echoes every datagram back to its sender; reports its CPU time when asked. */
async function serveEcho(transport: Transport): Promise<void> {
  let port: number;
  let close: () => void;
  if (transport === 'native') {
    const socket: NativeDatagramSocket = NativeDatagramSocket.open('127.0.0.1', 0, false, SOCKET_BUFFER_BYTES, (datagram, address, fromPort) => {
      socket.send(datagram, address, fromPort);
    });
    port = socket.port;
    close = () => socket.close();
  } else {
    const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: SOCKET_BUFFER_BYTES, sendBufferSize: SOCKET_BUFFER_BYTES });
    socket.on('message', (datagram, remote) => socket.send(datagram, remote.port, remote.address));
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    port = socket.address().port;
    close = () => socket.close();
  }
  const started = process.cpuUsage();
  process.send!({ port });
  process.on('message', () => {
    const used = process.cpuUsage(started);
    process.send!({ cpuMicros: used.user + used.system } satisfies EchoReport);
    close();
    process.disconnect();
  });
}

/** One sample: pairs/s and the echo server's CPU µs per pair. */
async function sample(transport: Transport, pairs: number, window: number): Promise<{ pairsPerSecond: number; cpuPerPair: number }> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--echo', transport]);
  const [{ port }] = (await once(child, 'message')) as [{ port: number }];
  const client = dgram.createSocket({ type: 'udp4', recvBufferSize: SOCKET_BUFFER_BYTES, sendBufferSize: SOCKET_BUFFER_BYTES });
  await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
  const datagram = new Uint8Array(DATAGRAM_BYTES);
  let sent = 0;
  let received = 0;
  const started = performance.now();
  await new Promise<void>((resolve) => {
    client.on('message', () => {
      received += 1;
      if (received === pairs) return resolve();
      if (sent < pairs) {
        sent += 1;
        client.send(datagram, port, '127.0.0.1');
      }
    });
    for (; sent < Math.min(window, pairs); sent++) client.send(datagram, port, '127.0.0.1');
  });
  const elapsedMs = performance.now() - started;
  child.send('report');
  const [report] = (await once(child, 'message')) as [EchoReport];
  client.close();
  await once(child, 'exit');
  return { pairsPerSecond: (pairs * 1000) / elapsedMs, cpuPerPair: report.cpuMicros / pairs };
}

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function compare(): Promise<void> {
  const pairs = Number(flags.pairs);
  const window = Number(flags.window);
  const repeats = Number(flags.repeats);
  const results: Record<Transport, { pairsPerSecond: number[]; cpuPerPair: number[] }> = {
    dgram: { pairsPerSecond: [], cpuPerPair: [] },
    native: { pairsPerSecond: [], cpuPerPair: [] },
  };
  // Samples in turns: both transports see the same load of the shared machine.
  for (let index = 0; index < repeats; index++) {
    for (const transport of ['dgram', 'native'] as const) {
      const measured = await sample(transport, pairs, window);
      results[transport].pairsPerSecond.push(measured.pairsPerSecond);
      results[transport].cpuPerPair.push(measured.cpuPerPair);
    }
  }
  const dgramCpu = median(results.dgram.cpuPerPair);
  const nativeCpu = median(results.native.cpuPerPair);
  const dgramRate = median(results.dgram.pairsPerSecond);
  const nativeRate = median(results.native.pairsPerSecond);
  console.log(`echo of ${DATAGRAM_BYTES}-byte datagrams, ${pairs} pairs, window ${window}, medians of ${repeats}; load ${os.loadavg().map((load) => load.toFixed(1)).join(' ')}`);
  console.log(`server CPU µs per pair   dgram ${dgramCpu.toFixed(1)}   native ${nativeCpu.toFixed(1)}   native/dgram ${(nativeCpu / dgramCpu).toFixed(2)}`);
  console.log(`pairs/s                  dgram ${dgramRate.toFixed(0)}   native ${nativeRate.toFixed(0)}   native/dgram ${(nativeRate / dgramRate).toFixed(2)}`);
}

if (flags.echo !== undefined) await serveEcho(flags.echo as Transport);
else await compare();
