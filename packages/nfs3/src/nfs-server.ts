/**
 * NfsTcpServer: the NFS and MOUNT services over TCP, NFS on one port (2049 by convention) and
 * MOUNT on another, both served by one dispatcher.
 *
 * Life: created by the application (or cli.ts), start() listens on both, close() stops both and
 * closes the store. Main thread.
 */
import { Dispatcher, OncRpcTcpServer } from '@roce-rpc/oncrpc';
import { createNfsService, type NfsService } from './nfs-service.js';
import type { NfsServiceOptions } from './options.js';

export interface NfsTcpServerOptions extends NfsServiceOptions {
  host?: string;
  /** NFS port; 0 picks a free one. */
  port?: number;
  /** MOUNT port; 0 picks a free one. */
  mountPort?: number;
}

export class NfsTcpServer {
  readonly dispatcher = new Dispatcher({ stringEncoding: 'latin1' });
  readonly service: NfsService;
  private readonly nfsServer: OncRpcTcpServer;
  private readonly mountServer: OncRpcTcpServer;

  constructor(options: NfsTcpServerOptions = {}) {
    this.service = createNfsService(this.dispatcher, options);
    const host = options.host ?? '0.0.0.0';
    this.nfsServer = new OncRpcTcpServer(this.dispatcher, { host, port: options.port ?? 2049 });
    this.mountServer = new OncRpcTcpServer(this.dispatcher, { host, port: options.mountPort ?? 20048 });
  }

  async start(): Promise<{ port: number; mountPort: number }> {
    const nfs = await this.nfsServer.listen();
    const mount = await this.mountServer.listen();
    return { port: nfs.port, mountPort: mount.port };
  }

  async close(): Promise<void> {
    await Promise.all([this.nfsServer.close(), this.mountServer.close()]);
    await this.service.close();
  }
}
