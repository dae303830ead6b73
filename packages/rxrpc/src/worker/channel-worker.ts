/**
 * Entry point of a channel worker thread.
 *
 * Life: started by the WorkerPool at server start, one of a small fixed set;
 * runs until the pool terminates it. It owns one ChannelThread: every channel
 * the placement assigns to this worker lives here and nowhere else. It reads
 * packet batches from the main thread and posts back batches of packets to
 * send; it shares nothing mutable with other threads except the lock-free
 * serial counters.
 */
import { parentPort, workerData } from 'node:worker_threads';
import assert from 'node:assert/strict';
import { SerialTable } from '../connection/serial-table.js';
import { RxError } from '../errors.js';
import { loadServiceModule, type RxService } from '../service.js';
import type { HostStart } from './channel-hosts.js';
import { ChannelThread } from './channel-thread.js';
import type { MainToWorker, WorkerToMain } from './messages.js';
import { PacketBatchWriter, readPacketBatch } from './packet-batch.js';

assert.ok(parentPort !== null, 'channel-worker runs as a worker thread');
const port = parentPort;
const start = workerData as HostStart;

function post(message: WorkerToMain, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

function run(services: RxService[]): void {
  const outbox = new PacketBatchWriter();
  let flushScheduled = false;
  const flush = (): void => {
    flushScheduled = false;
    if (outbox.count === 0) return;
    const batch = outbox.take();
    post({ kind: 'send', batch }, [batch]);
  };
  const thread = new ChannelThread({
    options: start.options,
    serials: new SerialTable(start.serials),
    poolBuffers: start.poolBuffers,
    services,
    transmit(connection, packet) {
      if (!outbox.add(connection.id, 0, packet)) {
        flush();
        outbox.add(connection.id, 0, packet);
      }
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    },
  });
  port.on('message', (message: MainToWorker) => {
    switch (message.kind) {
      case 'packets':
        for (const entry of readPacketBatch(message.batch)) thread.deliver(entry.connectionId, entry.channel, entry.packet);
        return;
      case 'open':
        thread.open(message.connection, message.channels);
        return;
      case 'close':
        thread.close(message.connectionId, new RxError('ERR_RX_CLOSED', message.reason));
        return;
      case 'refuse-new-calls':
        thread.refuseNewCalls();
        return;
      case 'stats':
        post({ kind: 'stats', requestId: message.requestId, ...thread.hostStats() });
    }
  });
  post({ kind: 'ready', serviceIds: services.map((service) => service.serviceId) });
}

loadServiceModule(start.serviceModule).then(run, (error: unknown) => post({ kind: 'start-failed', message: error instanceof Error ? error.message : String(error) }));
