/**
 * Entry point of a channel worker thread.
 *
 * Life: started by the WorkerPool at server start, one of a small fixed set;
 * runs until the pool terminates it. It owns one ChannelThread: every channel
 * the placement assigns to this worker lives here and nowhere else. With the
 * native server socket it reads its channels' packets from its own socket of
 * the server's steered group and sends through it (worker-socket.ts), or
 * (a socket shared with other processes) reads packet batches from the main
 * thread and sends through a duplicate of the server socket's descriptor;
 * with node:dgram, and before the server is bound, it posts its packets back
 * in batches for the main thread to send. It shares nothing mutable with
 * other threads except the lock-free per-connection words (serial counters,
 * channel-records.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import assert from 'node:assert/strict';
import { ChannelRecords } from '../connection/channel-records.js';
import { SerialTable } from '../connection/serial-table.js';
import { NativeDatagramSocket } from '../endpoint/native-datagram-socket.js';
import { RxError } from '../errors.js';
import { countPacketSent } from '../metrics.js';
import { HEADER_OFFSET } from '../protocol.js';
import { loadServiceModule, type RxService } from '../service.js';
import type { HostStart } from './channel-hosts.js';
import { ChannelThread } from './channel-thread.js';
import type { MainToWorker, WorkerToMain } from './messages.js';
import { HostedConnections } from './hosted-connections.js';
import { PacketBatchWriter, readPacketBatch } from './packet-batch.js';
import { WorkerSocket } from './worker-socket.js';

assert.ok(parentPort !== null, 'channel-worker runs as a worker thread');
const port = parentPort;
const start = workerData as HostStart;

function post(message: WorkerToMain, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

function run(services: RxService[]): void {
  const outbox = new PacketBatchWriter();
  /** This worker's own way out (native server socket, not steered): replies do not hop back to the main thread. */
  let sender: NativeDatagramSocket | undefined;
  const serials = new SerialTable(start.serials);
  const records = new ChannelRecords(start.records);
  let flushScheduled = false;
  const flush = (): void => {
    flushScheduled = false;
    if (outbox.count === 0) return;
    const batch = outbox.take();
    post({ kind: 'send', batch }, [batch]);
  };
  const thread = new ChannelThread({
    options: start.options,
    serials,
    poolBuffers: start.poolBuffers,
    services,
    transmit(connection, packet) {
      if (steered.attached) return steered.send(connection, packet);
      if (sender !== undefined) {
        // The main thread counts what it sends; this thread counts its own.
        countPacketSent(thread.counters, packet[HEADER_OFFSET.type] ?? 0);
        sender.send(packet, connection.peerAddress, connection.peerPort);
        return;
      }
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
  const steered = new WorkerSocket(thread, new HostedConnections(records, serials, thread.counters, (info, packet) => steered.send(info, packet)), records, {
    forward: (datagram, address, fromPort) => post({ kind: 'forward', datagram, address, port: fromPort }, [datagram]),
  });
  port.on('message', (message: MainToWorker) => {
    switch (message.kind) {
      case 'packets':
        for (const entry of readPacketBatch(message.batch)) thread.deliver(entry.connectionId, entry.channel, entry.packet);
        return;
      case 'open':
        thread.open(message.connection, message.channels);
        steered.opened(message.connection);
        return;
      case 'close':
        steered.closed(message.connectionId);
        thread.close(message.connectionId, new RxError('ERR_RX_CLOSED', message.reason));
        return;
      case 'forwarded':
        steered.forwardAnswered();
        return;
      case 'refuse-new-calls':
        thread.refuseNewCalls();
        return;
      case 'socket':
        sender?.close();
        sender = undefined;
        try {
          if (message.steered) steered.attach(message.fd);
          else sender = NativeDatagramSocket.adopt(message.fd);
        } catch (error) {
          // Unsteered, replies still go out, posted back to the main thread as without a native socket;
          // steered, this worker's channels hear nothing: the calls time out, visibly.
          process.emitWarning(`rxrpc: channel worker could not adopt the socket's descriptor ${message.fd}: ${String(error)}`);
        }
        return;
      case 'stats':
        post({ kind: 'stats', requestId: message.requestId, ...thread.hostStats() });
    }
  });
  post({ kind: 'ready', serviceIds: services.map((service) => service.serviceId) });
}

loadServiceModule(start.serviceModule).then(run, (error: unknown) => post({ kind: 'start-failed', message: error instanceof Error ? error.message : String(error) }));
