#!/usr/bin/env node
/**
 * roce-rpc-server: resolves the configuration (flags, ROCE_RPC_* environment,
 * --config file, defaults), refuses a bad one with a message naming the
 * field, then runs the supervisor until SIGTERM or SIGINT (with --nfs, server process 0 also
 * serves the NFS export: src/nfs/nfs-export.ts).
 */
import { helpText, resolveCommandLine } from './config/sources.js';
import { ServerError } from './errors.js';
import { Supervisor } from './process/supervisor.js';

function fail(error: unknown): never {
  const { code = 'ERR_SERVER_START', message } = error as { code?: string; message: string };
  process.stderr.write(`roce-rpc-server: ${message} [${code}]\n`);
  process.exit(error instanceof ServerError && error.code.startsWith('ERR_SERVER_CONFIG') ? 2 : 1);
}

let resolved;
try {
  resolved = resolveCommandLine(process.argv.slice(2));
} catch (error) {
  fail(error);
}
if (resolved.help) {
  process.stdout.write(`${helpText()}\n`);
  process.exit(0);
}
const supervisor = new Supervisor(resolved.options);
let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void supervisor.stop().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
try {
  const listening = await supervisor.start();
  const nfs = listening.processes.find((each) => each.nfs !== null);
  const nfsLine = nfs?.nfs == null ? 'off' : `${resolved.options.nfs}: nfs tcp ${nfs.nfs.port}, mount tcp ${nfs.nfs.mountPort}, nfs rdma ${nfs.nfs.rdmaPort ?? 'off'} (process ${nfs.processIndex})`;
  process.stderr.write(
    `roce-rpc-server: ${resolved.options.processes} processes serving ${resolved.options.service}\n` +
      `  ONC RPC/TCP  ${listening.tcp ?? 'off'}\n  RxRPC/UDP    ${listening.udp ?? 'off'}\n  RDMA         ${listening.rdma}\n  NFSv3        ${nfsLine}\n  metrics      ${listening.metrics}\n`,
  );
  // After the banner: whoever waits for this line finds the banner already written.
  supervisor.log.info({ tcp: listening.tcp, udp: listening.udp, rdma: listening.rdma, metrics: listening.metrics, processes: resolved.options.processes }, 'listening');
} catch (error) {
  fail(error);
}
