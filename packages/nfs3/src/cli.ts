#!/usr/bin/env node
/**
 * nfs3-server: serves NFSv3 + MOUNT v3 over TCP (and NFSv3 over RDMA with --rdma-port) until
 * SIGINT/SIGTERM.
 *
 *   nfs3-server [--directory DIR --secret-file FILE] [--host 0.0.0.0] [--port 2049]
 *               [--mount-port 20048] [--rdma-port 20049] [--export-path /export]
 *               [--max-transfer-bytes 1048576] [--rdma-threads N] [--rdma-busy-poll-us US]
 *
 * --rdma-threads N (1..64, with --rdma-port and --directory) serves NFS over RDMA from N of
 * svcrdma's worker threads instead of the main thread. --rdma-busy-poll-us: how long svcrdma's
 * completion threads keep polling after a completion before sleeping (its busyPollMicros, 0).
 * Without --directory the export is an in-memory file system. The secret file (created with 32
 * random bytes when missing) keeps directory handles valid across restarts. Prints one JSON
 * line `{"port":…,"mountPort":…,"rdmaPort":…}` once every port listens (`--host` must then
 * be an address of an RDMA device).
 */
import { parseArgs } from 'node:util';
import { Nfs3Error, Nfs3ErrorCode } from './errors.js';
import { loadHandleSecret } from './handles.js';
import { NfsServer } from './nfs-server.js';
import { DirectoryStore } from './store/directory-store.js';
import type { NfsStore } from './store/store.js';

function portOption(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Nfs3Error(Nfs3ErrorCode.INVALID_OPTION, `${name} must be a port number`);
  return port;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      directory: { type: 'string' }, 'secret-file': { type: 'string' }, host: { type: 'string' }, port: { type: 'string' },
      'mount-port': { type: 'string' }, 'rdma-port': { type: 'string' }, 'export-path': { type: 'string' }, 'max-transfer-bytes': { type: 'string' },
      'rdma-threads': { type: 'string' },
      'rdma-busy-poll-us': { type: 'string' },
    },
  });
  const rdmaThreads = values['rdma-threads'] === undefined ? undefined : Number(values['rdma-threads']);
  const busyPollMicros = values['rdma-busy-poll-us'] === undefined ? undefined : Number(values['rdma-busy-poll-us']);
  if (busyPollMicros !== undefined && values['rdma-port'] === undefined) throw new Nfs3Error(Nfs3ErrorCode.INVALID_OPTION, '--rdma-busy-poll-us needs --rdma-port');
  if (rdmaThreads !== undefined && values['rdma-port'] === undefined) throw new Nfs3Error(Nfs3ErrorCode.INVALID_OPTION, '--rdma-threads needs --rdma-port');
  if (rdmaThreads !== undefined && rdmaThreads !== 0 && values.directory === undefined) {
    throw new Nfs3Error(Nfs3ErrorCode.INVALID_OPTION, '--rdma-threads needs --directory: the in-memory export lives in one thread');
  }
  let store: NfsStore | undefined;
  if (values.directory !== undefined) {
    const secretFile = values['secret-file'];
    if (secretFile === undefined) throw new Nfs3Error(Nfs3ErrorCode.INVALID_OPTION, '--secret-file is required with --directory');
    store = await DirectoryStore.open({ root: values.directory, handleSecret: await loadHandleSecret(secretFile) });
  }
  const server = new NfsServer({
    store, host: values.host, port: portOption(values.port, '--port', 2049), mountPort: portOption(values['mount-port'], '--mount-port', 20048),
    rdma: values['rdma-port'] === undefined ? undefined : { port: portOption(values['rdma-port'], '--rdma-port', 20049), threads: rdmaThreads, busyPollMicros },
    exportPath: values['export-path'], maxTransferBytes: values['max-transfer-bytes'] === undefined ? undefined : Number(values['max-transfer-bytes']),
  });
  const ports = await server.start();
  process.stdout.write(`${JSON.stringify(ports)}\n`);
  const stop = (): void => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`nfs3-server: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
