/**
 * The server side of bench/null_rpc.bench.ts, in its own process (as the kernel's
 * svcrdma is not in the client's): serves NFSv4 NULL on PORT until stdin closes.
 * `node null_server.ts PORT` serves on the main thread (SvcRdmaServer);
 * `node null_server.ts PORT THREADS` on THREADS worker threads (SvcRdmaThreadedServer);
 * `node null_server.ts PORT THREADS MICROS` with completion threads that busy-poll MICROS.
 */
import { SvcRdmaServer, SvcRdmaThreadedServer } from '../dist/index.js';
import { createCallHandler } from './null_service.mjs';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
const port = Number(process.argv[2]);
const threads = process.argv[3] === undefined ? 0 : Number(process.argv[3]);
const busyPollMicros = process.argv[4] === undefined ? 0 : Number(process.argv[4]);
// BENCH_CALLS_PER_TAKE: the threaded server's callsPerTake (default: its own default).
const callsPerTake = process.env.BENCH_CALLS_PER_TAKE === undefined ? {} : { callsPerTake: Number(process.env.BENCH_CALLS_PER_TAKE) };
const server =
  threads > 0
    ? await SvcRdmaThreadedServer.listen({ address, port, threads, busyPollMicros, ...callsPerTake, serviceModule: new URL('./null_service.mjs', import.meta.url) })
    : SvcRdmaServer.listen(createCallHandler(), { address, port });
process.stdout.write('ready\n');
process.stdin.resume();
process.stdin.on('end', () => {
  void server.close().then(() => process.exit(0));
});
