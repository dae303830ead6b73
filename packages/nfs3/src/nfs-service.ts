/**
 * createNfsService: registers NFS version 3 and MOUNT version 3 on a Dispatcher (any transport
 * that feeds it serves them: the TCP server here, svcrdma next).
 *
 * Life: the caller owns the dispatcher and the returned service; close() closes the store.
 * On the thread that owns the dispatcher: the main thread, or each of svcrdma's worker threads
 * serving an export (threads/nfs-thread-service.mjs, NFS only).
 */
import type { Dispatcher } from '@roce-rpc/oncrpc';
import { countedHandlers, createMetrics, type NfsMetrics } from './metrics.js';
import { mountProcedures } from './mount-service.js';
import { fillServiceOptions, type FilledNfsServiceOptions, type NfsServiceOptions } from './options.js';
import { attributeProcedures } from './procedures/attribute-procedures.js';
import { createProcedureContext } from './procedures/context.js';
import { dataProcedures } from './procedures/data-procedures.js';
import { fileSystemProcedures } from './procedures/file-system-procedures.js';
import { directoryProcedures } from './procedures/directory-procedures.js';
import { namespaceProcedures } from './procedures/namespace-procedures.js';
import { MOUNT_PROGRAM, MOUNT_PROGRAM_MOUNT_V3_DESCRIPTOR } from './protocol/mount3.generated.js';
import { NFS_PROGRAM, NFS_PROGRAM_NFS_V3_DESCRIPTOR } from './protocol/nfs3.generated.js';
import { MemoryStore } from './store/memory-store.js';

export interface NfsService {
  readonly options: FilledNfsServiceOptions;
  /** WRITE/COMMIT verifier of this instance. */
  readonly writeVerifier: Buffer;
  readonly metrics: NfsMetrics;
  close(): Promise<void>;
}

/** Registers both programs; the dispatcher should use `stringEncoding: 'latin1'` so names are bytes. */
export function createNfsService(dispatcher: Dispatcher, options: NfsServiceOptions = {}): NfsService {
  const filled = fillServiceOptions(options, () => new MemoryStore());
  const context = createProcedureContext(filled.store, filled.maxTransferBytes, filled.writeVerifier);
  const metrics = createMetrics();
  const handlers = {
    ...attributeProcedures(context),
    ...fileSystemProcedures(context),
    ...namespaceProcedures(context),
    ...dataProcedures(context),
    ...directoryProcedures(context),
  };
  dispatcher.addVersion(NFS_PROGRAM, NFS_PROGRAM_NFS_V3_DESCRIPTOR, countedHandlers(handlers, metrics));
  if (filled.serveMount) dispatcher.addVersion(MOUNT_PROGRAM, MOUNT_PROGRAM_MOUNT_V3_DESCRIPTOR, mountProcedures(filled.exportPath, filled.store.rootHandle));
  return { options: filled, writeVerifier: context.writeVerifier, metrics, close: () => filled.store.close() };
}
