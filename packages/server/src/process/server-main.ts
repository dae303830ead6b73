/**
 * Entry point of a server process forked by the supervisor: starts a
 * ServerProcess with the options the supervisor filled, reports ready (or
 * why it could not start), and drains on SIGTERM, then exits 0.
 *
 * A warm spare (ENV_PROCESS_INDEX = 'spare') has booted Node, imported every
 * module and the service, started its procedure and RxRPC channel threads
 * (ServerProcess.prepare), and waits for the supervisor to hand it the slot
 * of a process that died: replacing a process then costs only taking its
 * ports (ServerProcess.serve).
 */
import cluster from 'node:cluster';
import assert from 'node:assert/strict';
import type { FilledServerOptions } from '../config/options.js';
import { answerMetricRequests } from '../metrics/metrics-exchange.js';
import { ENV_FILLED_OPTIONS, ENV_INSTANCE_ID, ENV_PROCESS_INDEX, SPARE_PROCESS_INDEX, isActivateSpare, type ProcessMessage } from './messages.js';
import { ServerProcess } from './server-process.js';

assert.ok(cluster.isWorker, 'server-main runs in a process forked by the supervisor');
answerMetricRequests();
const options = JSON.parse(process.env[ENV_FILLED_OPTIONS]!) as FilledServerOptions;

function send(message: ProcessMessage): void {
  process.send?.(message);
}

function slotIndex(): Promise<number> {
  const index = process.env[ENV_PROCESS_INDEX];
  if (index !== SPARE_PROCESS_INDEX) return Promise.resolve(Number(index));
  return new Promise((resolve) => {
    const onMessage = (message: unknown): void => {
      if (!isActivateSpare(message)) return;
      process.off('message', onMessage);
      resolve(message.processIndex);
    };
    process.on('message', onMessage);
    send({ kind: 'spare-waiting' });
  });
}

// A spare prepares (threads started, service imported) before it has a slot; the others right away.
const server = new ServerProcess(options, process.env[ENV_INSTANCE_ID]!);
let draining = false;
let serving = false;
process.on('SIGTERM', () => {
  if (draining) return;
  draining = true;
  // A spare (or a process still preparing) serves nothing: there is nothing to drain.
  if (!serving) process.exit(0);
  void server.drain().then(
    () => process.exit(0),
    (error: unknown) => {
      server.log.error({ err: error }, 'drain failed');
      process.exit(1);
    },
  );
});
// The supervisor handles SIGINT for the whole group (a terminal's Ctrl-C reaches every process).
process.on('SIGINT', () => {});

let processIndex = process.env[ENV_PROCESS_INDEX] === SPARE_PROCESS_INDEX ? -1 : Number(process.env[ENV_PROCESS_INDEX]);
try {
  await server.prepare();
  processIndex = await slotIndex();
  serving = true;
  send(await server.serve(processIndex));
} catch (error) {
  const { code = 'ERR_SERVER_START', message } = error as { code?: string; message: string };
  server.log.error({ err: error }, 'start failed');
  send({ kind: 'start-failed', processIndex, code, message });
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 100);
}
