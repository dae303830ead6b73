/**
 * NfsMetrics: calls per procedure and results per NFS status, counted as replies are produced.
 * Plain counters (read them when you like, e.g. from a Prometheus collector). Created by
 * createNfsService, main thread.
 */
import type { RpcCall } from '@roce-rpc/oncrpc';
import { nfsstat3_values } from './protocol/nfs3.generated.js';

export interface NfsMetrics {
  /** Calls answered, by procedure name (NFSPROC3_READ, ...). */
  calls: Record<string, number>;
  /** Results by status name (NFS3_OK, NFS3ERR_STALE, ...). */
  statuses: Record<string, number>;
  /** READ and WRITE payload bytes. */
  bytesRead: number;
  bytesWritten: number;
}

const statusNames = new Map<number, string>(Object.entries(nfsstat3_values).map(([name, value]) => [value, name]));

/** Any procedure handler: `never` accepts every argument type, so typed handlers fit unchanged. */
type Handler = (argument: never, call: RpcCall) => unknown;

export function createMetrics(): NfsMetrics {
  return { calls: {}, statuses: {}, bytesRead: 0, bytesWritten: 0 };
}

function record(metrics: NfsMetrics, procedure: string, result: unknown): void {
  metrics.calls[procedure] = (metrics.calls[procedure] ?? 0) + 1;
  const outcome = result as { status?: number; resok?: { count?: number } };
  if (outcome.status === undefined) return;
  const name = statusNames.get(outcome.status) ?? String(outcome.status);
  metrics.statuses[name] = (metrics.statuses[name] ?? 0) + 1;
  const count = outcome.status === 0 ? outcome.resok?.count ?? 0 : 0;
  if (procedure === 'NFSPROC3_READ') metrics.bytesRead += count;
  if (procedure === 'NFSPROC3_WRITE') metrics.bytesWritten += count;
}

/** The same handlers, each counting its call and result; a handler that answers at once still does (no promise added). */
export function countedHandlers<Handlers extends Record<string, Handler>>(handlers: Handlers, metrics: NfsMetrics): Handlers {
  const counted: Record<string, (argument: unknown, call: RpcCall) => unknown> = {};
  for (const [procedure, handler] of Object.entries(handlers)) {
    const recorded = (result: unknown): unknown => {
      record(metrics, procedure, result);
      return result;
    };
    counted[procedure] = (argument, call) => {
      const result = handler(argument as never, call);
      return result instanceof Promise ? result.then(recorded) : recorded(result);
    };
  }
  return counted as unknown as Handlers;
}
