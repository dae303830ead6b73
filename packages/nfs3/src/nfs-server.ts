/**
 * NfsServer: the NFS and MOUNT services on one dispatcher, over TCP (NFS on one port, 2049 by
 * convention, MOUNT on another) and, when asked, NFS over RPC-over-RDMA too (svcrdma, port 20049
 * by convention; the kernel client still runs MOUNT over TCP: `mountproto=tcp`). NFS over RDMA
 * is served on the main thread (SvcRdmaServer) or, with `rdma.threads`, by svcrdma's worker
 * threads (SvcRdmaThreadedServer), each serving NFS from its own DirectoryStore over the
 * export's root and secret (threads/nfs-thread-service.mjs); MOUNT and TCP stay here.
 *
 * Life: created by the application (or cli.ts), start() listens on every transport, close()
 * stops them all (RDMA connections are torn down first, then the worker threads) and closes the
 * store. Main thread.
 */
import { Dispatcher, OncRpcTcpServer } from '@roce-rpc/oncrpc';
import { MAX_THREADS, SvcRdmaServer, SvcRdmaThreadedServer, type SvcRdmaServerOptions } from '@roce-rpc/svcrdma';
import { Nfs3Error, Nfs3ErrorCode } from './errors.js';
import { createNfsService, type NfsService } from './nfs-service.js';
import type { NfsServiceOptions } from './options.js';
import { DirectoryStore } from './store/directory-store.js';
import { SharedPathHints } from './store/shared-path-hints.js';

/** What every worker thread imports: JavaScript, never TypeScript (see the module's comment). */
const threadServiceModule = new URL('../threads/nfs-thread-service.mjs', import.meta.url);

export interface NfsRdmaOptions extends SvcRdmaServerOptions {
  /**
   * 0 (the default): NFS over RDMA on the main thread (SvcRdmaServer, `workers` RPCs at once).
   * 1..64: on that many of svcrdma's worker threads (SvcRdmaThreadedServer); needs a
   * DirectoryStore (a MemoryStore lives in one thread's heap) and takes no `workers` or
   * `receiveCompletions` (the threads block in the verbs core for their Receives).
   */
  threads?: number;
}

/** The `threads` of an export's RDMA options, checked against its store; refusals name the field. */
export function rdmaThreadsOf(rdma: NfsRdmaOptions | undefined, store: NfsServiceOptions['store']): number {
  const threads = rdma?.threads ?? 0;
  if (!Number.isInteger(threads) || threads < 0 || threads > MAX_THREADS) {
    throw new Nfs3Error(Nfs3ErrorCode.INVALID_OPTION, `rdma.threads must be an integer from 0 to ${MAX_THREADS}, got ${String(threads)}`);
  }
  if (threads === 0) return 0;
  if (!(store instanceof DirectoryStore)) {
    throw new Nfs3Error(
      Nfs3ErrorCode.INVALID_OPTION,
      'rdma.threads needs a DirectoryStore: a memory store lives in one thread\'s heap and cannot be served from worker threads (use rdma.threads 0)',
    );
  }
  for (const field of ['workers', 'receiveCompletions'] as const) {
    if (rdma?.[field] !== undefined) throw new Nfs3Error(Nfs3ErrorCode.INVALID_OPTION, `rdma.${field} is an option of the main-thread server; it does not apply with rdma.threads`);
  }
  return threads;
}

/**
 * What every worker thread opens the export again from (structured-cloned into
 * threads/nfs-thread-service.mjs): the directory store's root and secret, the limits, the
 * export's write verifier, and the memory of the path hints its stores share.
 */
export function threadServiceOptionsOf(service: NfsService, pathHints: SharedPathHints): Record<string, unknown> {
  const { store, maxTransferBytes, exportPath, writeVerifier } = service.options;
  const { root, handleSecret } = (store as DirectoryStore).openOptions;
  return { root, handleSecret, maxTransferBytes, exportPath, writeVerifier, pathHints: pathHints.buffer };
}

export interface NfsServerOptions extends NfsServiceOptions {
  host?: string;
  /** NFS port over TCP; 0 picks a free one. */
  port?: number;
  /** MOUNT port over TCP; 0 picks a free one. */
  mountPort?: number;
  /**
   * Serve NFS over RPC-over-RDMA as well: svcrdma's options (`address` defaults to `host`, which
   * must then be an address of an RDMA device; `port` to 20049) and `threads`.
   */
  rdma?: NfsRdmaOptions;
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
  /** The main-thread RDMA listener once started (its connections and metrics), else null. */
  rdmaServer: SvcRdmaServer | null = null;
  /** With `rdma.threads`: the worker-thread RDMA server once started, else null. */
  threadedRdmaServer: SvcRdmaThreadedServer | null = null;
  private readonly nfsServer: OncRpcTcpServer;
  private readonly mountServer: OncRpcTcpServer;
  private readonly host: string;
  private readonly rdmaThreads: number;

  constructor(private readonly options: NfsServerOptions = {}) {
    this.rdmaThreads = rdmaThreadsOf(options.rdma, options.store);
    this.dispatcher = options.dispatcher ?? new Dispatcher({ stringEncoding: 'latin1' });
    this.service = createNfsService(this.dispatcher, options);
    this.host = options.host ?? '0.0.0.0';
    this.nfsServer = new OncRpcTcpServer(this.dispatcher, { host: this.host, port: options.port ?? 2049 });
    this.mountServer = new OncRpcTcpServer(this.dispatcher, { host: this.host, port: options.mountPort ?? 20048 });
  }

  async start(): Promise<NfsServerPorts> {
    const nfs = await this.nfsServer.listen();
    const mount = await this.mountServer.listen();
    try {
      if (this.options.rdma !== undefined && this.rdmaThreads > 0) this.threadedRdmaServer = await this.listenOnThreads(this.options.rdma);
      else if (this.options.rdma !== undefined) this.rdmaServer = SvcRdmaServer.listen(this.dispatcher, { address: this.host, ...this.options.rdma });
    } catch (error) {
      await Promise.all([this.nfsServer.close(), this.mountServer.close()]);
      throw error;
    }
    return { port: nfs.port, mountPort: mount.port, rdmaPort: this.rdmaServer?.port ?? this.threadedRdmaServer?.port ?? null };
  }

  private listenOnThreads(rdma: NfsRdmaOptions): Promise<SvcRdmaThreadedServer> {
    const { threads: _threads, workers: _workers, receiveCompletions: _receiveCompletions, ...transport } = rdma;
    return SvcRdmaThreadedServer.listen({
      address: this.host,
      ...transport,
      threads: this.rdmaThreads,
      serviceModule: threadServiceModule,
      serviceOptions: threadServiceOptionsOf(this.service, SharedPathHints.create()),
    });
  }

  /** `drainMs`: how long TCP connections may take to answer the calls they have read (oncrpc's close). */
  async close(options: { drainMs?: number } = {}): Promise<void> {
    await Promise.all([this.nfsServer.close(options), this.mountServer.close(options), this.rdmaServer?.close(), this.threadedRdmaServer?.close()]);
    this.rdmaServer = null;
    this.threadedRdmaServer = null;
    await this.service.close();
  }
}
