/**
 * What every procedure group shares: the store, the limits, and the verifiers of this server
 * instance. Created once by createNfsService; main thread.
 */
import { randomBytes } from 'node:crypto';
import type { NfsStore } from '../store/store.js';

export interface ProcedureContext {
  store: NfsStore;
  maxTransferBytes: number;
  /**
   * WRITE/COMMIT verifier: new random bytes per server instance, so a client that wrote
   * UNSTABLE data before a restart sees the change and sends the data again. The worker threads
   * of one export share theirs (a WRITE and its COMMIT may reach two threads).
   */
  writeVerifier: Buffer;
}

export function createProcedureContext(store: NfsStore, maxTransferBytes: number, writeVerifier: Buffer = randomBytes(8)): ProcedureContext {
  return { store, maxTransferBytes, writeVerifier };
}
