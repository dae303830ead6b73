/**
 * Entry point of a server process forked by the supervisor: starts a
 * ServerProcess with the options the supervisor filled, reports ready (or
 * why it could not start), and drains on SIGTERM, then exits 0.
 */
import cluster from 'node:cluster';
import assert from 'node:assert/strict';
import type { FilledServerOptions } from '../config/options.js';
import { ENV_FILLED_OPTIONS, ENV_INSTANCE_ID, ENV_PROCESS_INDEX, type ProcessMessage } from './messages.js';
import { ServerProcess } from './server-process.js';

assert.ok(cluster.isWorker, 'server-main runs in a process forked by the supervisor');
const options = JSON.parse(process.env[ENV_FILLED_OPTIONS]!) as FilledServerOptions;
const processIndex = Number(process.env[ENV_PROCESS_INDEX]);
const server = new ServerProcess(options, processIndex, process.env[ENV_INSTANCE_ID]!);

function send(message: ProcessMessage): void {
  process.send?.(message);
}

let draining = false;
process.on('SIGTERM', () => {
  if (draining) return;
  draining = true;
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

try {
  send(await server.start());
} catch (error) {
  const { code = 'ERR_SERVER_START', message } = error as { code?: string; message: string };
  server.log.error({ err: error }, 'start failed');
  send({ kind: 'start-failed', processIndex, code, message });
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 100);
}
