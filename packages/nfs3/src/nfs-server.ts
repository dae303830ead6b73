/**
 * NfsServer: the NFS and MOUNT services on one dispatcher, over TCP (NFS on one port, 2049 by
 * convention, MOUNT on another) and, when asked, NFS over RPC-over-RDMA too (svcrdma, port 20049
 * by convention; the kernel client still runs MOUNT over TCP: `mountproto=tcp`).
 *
 * Life: created by the application (or cli.ts), start() listens on every transport, close()
 * stops them all (RDMA connections are torn down first) and closes the store. Main thread.
 */
import { Dispatcher, OncRpcTcpServer } from '@roce-rpc/oncrpc';
import { SvcRdmaServer, type SvcRdmaServerOptions } from '@roce-rpc/svcrdma';
import { createNfsService, type NfsService } from './nfs-service.js';
import type { NfsServiceOptions } from './options.js';

export interface NfsServerOptions extends NfsServiceOptions {
  host?: string;
  /** NFS port over TCP; 0 picks a free one. */
  port?: number;
  /** MOUNT port over TCP; 0 picks a free one. */
  mountPort?: number;
  /**
   * Serve NFS over RPC-over-RDMA as well: svcrdma's options (`address` defaults to `host`, which
   * must then be an address of an RDMA device; `port` to 20049).
   */
  rdma?: SvcRdmaServerOptions;
  /**
   * The dispatcher both programs are registered on (e.g. one that counts calls for the
   * embedding server's metrics); it must decode strings as latin1 (names are bytes). A new
   * plain Dispatcher by default.
   */
  dispatcher?: Dispatcher;
}

export interface NfsServerPorts {
  port: number;
  mountPort: number;
  /** The RDMA port, or null when NFS is not served over RDMA. */
  rdmaPort: number | null;
}

export class NfsServer {
  readonly dispatcher: Dispatcher;
  readonly service: NfsService;
  /** The RDMA listener once started (its connections and metrics), else null. */
  rdmaServer: SvcRdmaServer | null = null;
  private readonly nfsServer: OncRpcTcpServer;
  private readonly mountServer: OncRpcTcpServer;
  private readonly host: string;

  constructor(private readonly options: NfsServerOptions = {}) {
    this.dispatcher = options.dispatcher ?? new Dispatcher({ stringEncoding: 'latin1' });
    this.service = createNfsService(this.dispatcher, options);
    this.host = options.host ?? '0.0.0.0';
    this.nfsServer = new OncRpcTcpServer(this.dispatcher, { host: this.host, port: options.port ?? 2049 });
    this.mountServer = new OncRpcTcpServer(this.dispatcher, { host: this.host, port: options.mountPort ?? 20048 });
  }

  async start(): Promise<NfsServerPorts> {
    const nfs = await this.nfsServer.listen();
    const mount = await this.mountServer.listen();
    if (this.options.rdma !== undefined) {
      this.rdmaServer = SvcRdmaServer.listen(this.dispatcher, { address: this.host, ...this.options.rdma });
    }
    return { port: nfs.port, mountPort: mount.port, rdmaPort: this.rdmaServer?.port ?? null };
  }

  /** `drainMs`: how long TCP connections may take to answer the calls they have read (oncrpc's close). */
  async close(options: { drainMs?: number } = {}): Promise<void> {
    await Promise.all([this.nfsServer.close(options), this.mountServer.close(options), this.rdmaServer?.close()]);
    this.rdmaServer = null;
    await this.service.close();
  }
}
