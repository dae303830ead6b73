/**
 * The server side of bench/memory.bench.ts, in its own process so its memory
 * is its own: serves NFSv4 NULL on PORT — `node memory_server.ts PORT` on the
 * main thread (SvcRdmaServer, the default server), `node memory_server.ts PORT
 * THREADS` on THREADS worker threads (SvcRdmaThreadedServer); each line on stdin asks for a
 * sample, answered with one JSON line on stdout after a full GC (node
 * --expose-gc): RSS, V8 heap, and registered memory — VmPin, the pages the
 * kernel pinned for this process's memory registrations — plus the
 * connection gauges. stdin's end closes the server.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { liveObjects } from '@roce-rpc/verbs';
import { SvcRdmaServer, SvcRdmaThreadedServer } from '../dist/index.js';
import { createCallHandler } from './null_service.mjs';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
const port = Number(process.argv[2]);
const threads = process.argv[3] === undefined ? 0 : Number(process.argv[3]);
const mainThreadServer = threads > 0 ? null : SvcRdmaServer.listen(createCallHandler(), { address, port });
const threadedServer = threads > 0 ? await SvcRdmaThreadedServer.listen({ address, port, threads, serviceModule: new URL('./null_service.mjs', import.meta.url) }) : null;

/** A /proc/self/status field in KiB. */
function statusKiB(field: string): number {
  const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((candidate) => candidate.startsWith(`${field}:`));
  if (line === undefined) throw new Error(`no ${field} in /proc/self/status`);
  return Number(line.split(/\s+/)[1]);
}

/** What the server says it holds: calls served, send contexts allocated, registrations open. */
function serverCounts(): { calls: number; sendContexts: number; registrations: number } {
  if (threadedServer !== null) {
    const metrics = threadedServer.metrics();
    return { calls: metrics.workers.calls, sendContexts: metrics.transports.allocations, registrations: threadedServer.gauges().openRegistrations };
  }
  const connections = [...mainThreadServer!.connections];
  return {
    calls: connections.reduce((sum, connection) => sum + connection.transport.metrics.calls, 0),
    sendContexts: connections.reduce((sum, connection) => sum + connection.transport.sendContexts.metrics.allocations, 0),
    registrations: connections.reduce((sum, connection) => sum + connection.openRegistrations, 0),
  };
}

function sample(): Record<string, unknown> {
  (globalThis as { gc?: () => void }).gc?.();
  return {
    rssKiB: Math.round(process.memoryUsage.rss() / 1024),
    heapUsedKiB: Math.round(process.memoryUsage().heapUsed / 1024),
    // Outside the V8 heap: Buffers and ArrayBuffers (the registered areas among them).
    externalKiB: Math.round(process.memoryUsage().external / 1024),
    pinnedKiB: statusKiB('VmPin'),
    ...serverCounts(),
    memoryRegions: liveObjects().MemoryRegion ?? 0,
  };
}

const lines = createInterface({ input: process.stdin });
lines.on('line', () => process.stdout.write(`${JSON.stringify(sample())}\n`));
lines.on('close', () => void (threadedServer ?? mainThreadServer!).close().then(() => process.exit(0)));
process.stdout.write('ready\n');
