// @ts-check
/**
 * The NFS export's service on svcrdma's worker threads (NfsServer with `rdma.threads`): every
 * worker imports this module and builds its own dispatcher serving NFS version 3 from its own
 * DirectoryStore over the export's root and secret (the host file system is the shared state;
 * handles are (device, inode, generation) + MAC, so any thread decodes any other's, and the
 * stores share inode -> path hints so a handle another thread made is found without a walk), with the
 * export's one write verifier (a WRITE and its COMMIT may reach two threads). MOUNT stays on
 * the main thread with the TCP listeners.
 *
 * Life: imported by each worker thread at its start (svcrdma's worker_main.ts calls
 * createCallHandler once); the store lives as long as the thread.
 *
 * JavaScript, not TypeScript: workers importing a .ts module at once crashed in V8's wasm code
 * GC in the TCG guest (Node strips types with a WebAssembly module whose code V8 shares between
 * worker isolates; see svcrdma's test/lab/thread_service.mjs). Imports the package's built
 * dist (`@roce-rpc/nfs3`), so `pnpm --filter @roce-rpc/nfs3 build` first.
 */
import { Dispatcher } from '@roce-rpc/oncrpc';
import { DirectoryStore, SharedPathHints, createNfsService } from '@roce-rpc/nfs3';

/**
 * @typedef {object} NfsThreadOptions what NfsServer hands every worker (structured-cloned)
 * @property {string} root the export's resolved root directory
 * @property {Uint8Array} handleSecret the handle secret (arrives as a Uint8Array)
 * @property {Uint8Array} writeVerifier the export's WRITE/COMMIT verifier
 * @property {number} maxTransferBytes
 * @property {string} exportPath
 * @property {SharedArrayBuffer} pathHints the inode -> path hints every worker's store shares
 */

/**
 * @param {NfsThreadOptions} options
 * @returns {Promise<Dispatcher>}
 */
export async function createCallHandler(options) {
  // Blocking system calls: this thread serves one RPC at a time, as an nfsd thread (host-files.ts).
  // One kept READ buffer: svcrdma copies a reply's data into its registered write buffer before
  // this thread takes its next call.
  const store = await DirectoryStore.open({
    root: options.root,
    handleSecret: Buffer.from(options.handleSecret),
    blockingCalls: true,
    reuseReadBuffer: true,
    pathHints: SharedPathHints.over(options.pathHints),
  });
  const dispatcher = new Dispatcher({ stringEncoding: 'latin1' });
  createNfsService(dispatcher, {
    store,
    maxTransferBytes: options.maxTransferBytes,
    exportPath: options.exportPath,
    writeVerifier: options.writeVerifier,
    serveMount: false,
  });
  return dispatcher;
}
