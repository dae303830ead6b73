/**
 * The `nfs` option: NFSv3 + MOUNT v3 (@roce-rpc/nfs3) served beside the configured service, over
 * TCP and, when an RDMA device is present, over RDMA.
 *
 * Life: started by the CLI once the supervisor is up, in the supervisor's own process (the export
 * is one store: an in-memory one cannot be shared by several processes); closed on SIGTERM/SIGINT
 * before the supervisor stops. Main thread.
 */
import type { NfsServer, NfsServerPorts } from '@roce-rpc/nfs3';
import type { FilledServerOptions } from '../config/options.js';

async function rdmaAvailable(): Promise<boolean> {
  try {
    return (await import('@roce-rpc/verbs')).listDevices().length > 0;
  } catch {
    return false;
  }
}

/** Starts the export named by `options.nfs` (not 'off'). */
export async function startNfsExport(options: FilledServerOptions): Promise<{ server: NfsServer; ports: NfsServerPorts }> {
  const { NfsServer, DirectoryStore, loadHandleSecret } = await import('@roce-rpc/nfs3');
  const store = options.nfs === 'memory' ? undefined : await DirectoryStore.open({ root: options.nfs, handleSecret: await loadHandleSecret(options.nfsSecretFile) });
  const server = new NfsServer({
    store,
    host: options.host,
    port: options.nfsPort,
    mountPort: options.nfsMountPort,
    rdma: (await rdmaAvailable()) ? { port: options.nfsRdmaPort, workers: options.threads } : undefined,
  });
  return { server, ports: await server.start() };
}
