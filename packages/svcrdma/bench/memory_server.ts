/**
 * The server side of bench/memory.bench.ts, in its own process so its memory
 * is its own: serves NFSv4 NULL on PORT; each line on stdin asks for a
 * sample, answered with one JSON line on stdout after a full GC (node
 * --expose-gc): RSS, V8 heap, and registered memory — VmPin, the pages the
 * kernel pinned for this process's memory registrations — plus the
 * connection gauges. stdin's end closes the server.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Dispatcher, defineProcedure } from '@roce-rpc/oncrpc';
import { liveObjects } from '@roce-rpc/verbs';
import { xdrVoid } from '@roce-rpc/xdr';
import { SvcRdmaServer } from '../dist/index.js';

const address = process.env.RXE_LAB_ADDR ?? '192.0.2.1';
const port = Number(process.argv[2]);
const dispatcher = new Dispatcher().addVersion(100003, { name: 'NFS4_NULL', version: 4, procedures: [defineProcedure('NULL', 0, xdrVoid, xdrVoid)] }, {});
const server = SvcRdmaServer.listen(dispatcher, { address, port });

/** A /proc/self/status field in KiB. */
function statusKiB(field: string): number {
  const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((candidate) => candidate.startsWith(`${field}:`));
  if (line === undefined) throw new Error(`no ${field} in /proc/self/status`);
  return Number(line.split(/\s+/)[1]);
}

function sample(): Record<string, unknown> {
  (globalThis as { gc?: () => void }).gc?.();
  const connections = [...server.connections];
  return {
    rssKiB: Math.round(process.memoryUsage.rss() / 1024),
    heapUsedKiB: Math.round(process.memoryUsage().heapUsed / 1024),
    pinnedKiB: statusKiB('VmPin'),
    calls: connections.reduce((sum, connection) => sum + connection.transport.metrics.calls, 0),
    sendContexts: connections.reduce((sum, connection) => sum + connection.transport.sendContexts.metrics.allocations, 0),
    registrations: connections.reduce((sum, connection) => sum + connection.openRegistrations, 0),
    memoryRegions: liveObjects().MemoryRegion ?? 0,
  };
}

const lines = createInterface({ input: process.stdin });
lines.on('line', () => process.stdout.write(`${JSON.stringify(sample())}\n`));
lines.on('close', () => void server.close().then(() => process.exit(0)));
process.stdout.write('ready\n');
