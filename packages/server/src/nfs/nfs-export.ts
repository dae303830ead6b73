/**
 * The `nfs` option: NFSv3 + MOUNT v3 (@roce-rpc/nfs3) served beside the service by ONE server
 * process, NFS_OWNER_PROCESS_INDEX (0, which also owns the service's RDMA listener): the NFS and
 * MOUNT TCP ports and the NFS rdma_cm port can each be bound by one process only, and an export
 * is one store (an in-memory one cannot be shared between processes).
 *
 * Life: started by ServerProcess.serve() in the owner process, closed by its drain(). When the
 * process dies the export dies with it and the supervisor's replacement starts it again: a
 * memory export starts empty (mounted clients get STALE handles), a directory export keeps its
 * handles through the secret file. The handlers run on the owner's main thread (the store lives
 * there), not on the procedure threads; with `nfsRdmaThreads` NFS over RDMA runs on svcrdma's
 * worker threads instead (a directory store per thread; MOUNT and TCP stay on the main thread,
 * and those worker calls are not in the call metrics, only in the svcrdma series). Main thread.
 */
import type { NfsServer, NfsServerPorts } from '@roce-rpc/nfs3';
import type { Logger } from 'pino';
import type { FilledServerOptions } from '../config/options.js';
import { ServerError, ServerErrorCode } from '../errors.js';
import type { CallMetrics, CallSeries } from '../metrics/call-metrics.js';
import type { CallTransport } from '../service/definition.js';
import { CALL_HEADER_BYTES, callHeaderWord, CountingDispatcher, PROCEDURE_OFFSET, PROGRAM_OFFSET } from '../metrics/counting-dispatcher.js';

export const NFS_OWNER_PROCESS_INDEX = 0;

export type NfsExportStart = { server: NfsServer; ports: NfsServerPorts; reason?: undefined } | { server?: undefined; ports?: undefined; reason: string };

/**
 * The export's dispatcher: every reply is counted into the process's call metrics
 * (`program` 100003 / 100005, the RFC's procedure names), so NFS calls are on /metrics beside
 * the service's. Series are made once per (transport, program, procedure) the programs define:
 * a hostile procedure number shares `other`.
 */
class CountingNfsDispatcher extends CountingDispatcher {
  private readonly seriesByKey = new Map<string, CallSeries>();

  constructor(
    callMetrics: CallMetrics,
    private readonly procedureNames: ReadonlyMap<number, ReadonlyMap<number, string>>,
    log: Logger,
  ) {
    super(
      { stringEncoding: 'latin1', onHandlerError: (error, call) => log.warn({ err: error, xid: call.xid, program: call.program, procedure: call.procedure }, 'nfs handler failed; answered SYSTEM_ERR') },
      callMetrics,
      log,
    );
  }

  protected seriesOf(bytes: Uint8Array, transport: CallTransport): CallSeries {
    const whole = bytes.byteLength >= CALL_HEADER_BYTES;
    const program = whole ? callHeaderWord(bytes, PROGRAM_OFFSET) : -1;
    const names = this.procedureNames.get(program);
    const procedure = (whole ? names?.get(callHeaderWord(bytes, PROCEDURE_OFFSET)) : undefined) ?? 'other';
    const key = `${transport} ${names === undefined ? 'other' : program} ${procedure}`;
    let series = this.seriesByKey.get(key);
    if (series === undefined) {
      series = this.callMetrics.series(transport, names === undefined ? 'other' : String(program), procedure);
      this.seriesByKey.set(key, series);
    }
    return series;
  }
}

async function rdmaAvailable(): Promise<boolean> {
  try {
    return (await import('@roce-rpc/verbs')).listDevices().length > 0;
  } catch {
    return false;
  }
}

/** Starts the export named by `options.nfs` in the owner process; elsewhere (or 'off') says why not. */
export async function startNfsExport(options: FilledServerOptions, processIndex: number, callMetrics: CallMetrics, log: Logger): Promise<NfsExportStart> {
  if (options.nfs === 'off') return { reason: 'off' };
  if (processIndex !== NFS_OWNER_PROCESS_INDEX) return { reason: `owned by process ${NFS_OWNER_PROCESS_INDEX}` };
  const { NfsServer, DirectoryStore, loadHandleSecret, nfs3, mount3 } = await import('@roce-rpc/nfs3');
  const procedureNames = new Map(
    [
      [nfs3.NFS_PROGRAM, nfs3.NFS_PROGRAM_NFS_V3_DESCRIPTOR],
      [mount3.MOUNT_PROGRAM, mount3.MOUNT_PROGRAM_MOUNT_V3_DESCRIPTOR],
    ].map(([program, version]) => [program as number, new Map((version as typeof nfs3.NFS_PROGRAM_NFS_V3_DESCRIPTOR).procedures.map((procedure) => [procedure.procedure, procedure.name]))]),
  );
  const store = options.nfs === 'memory' ? undefined : await DirectoryStore.open({ root: options.nfs, handleSecret: await loadHandleSecret(options.nfsSecretFile) });
  const server = new NfsServer({
    store,
    host: options.host,
    port: options.nfsPort,
    mountPort: options.nfsMountPort,
    rdma: !(await rdmaAvailable())
      ? undefined
      : options.nfsRdmaThreads > 0
        ? { port: options.nfsRdmaPort, threads: options.nfsRdmaThreads }
        : { port: options.nfsRdmaPort, workers: options.threads },
    dispatcher: new CountingNfsDispatcher(callMetrics, procedureNames, log),
  });
  const ports = await server.start().catch((error: NodeJS.ErrnoException & { port?: number }) => {
    if (error.code !== 'EADDRINUSE') throw error;
    const field = error.port === options.nfsMountPort ? 'nfsMountPort' : 'nfsPort';
    throw new ServerError(ServerErrorCode.ADDRESS_IN_USE, `${field}: ${options.host}:${error.port} is already in use`, field);
  });
  log.info({ nfs: options.nfs, ...ports }, 'nfs export listening');
  return { server, ports };
}
