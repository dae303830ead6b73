/**
 * RPC-over-RDMA (svcrdma) for the one process that owns the RDMA listener.
 *
 * rdma_cm has no SO_REUSEPORT: one listener per address and port. So the
 * process with index 0 (and only it) listens; the supervisor restarts it
 * like any other, and while it is down RDMA clients cannot connect. No RDMA
 * device (or no verbs library) means RDMA is off, not a failed start.
 */
import type { SvcRdmaServer } from '@roce-rpc/svcrdma';
import type { FilledServerOptions } from '../config/options.js';
import type { MeteredDispatcher } from './metered-dispatcher.js';

export const RDMA_OWNER_PROCESS_INDEX = 0;

export type RdmaStart = { server: SvcRdmaServer; reason?: undefined } | { server?: undefined; reason: string };

export async function startRdmaTransport(options: FilledServerOptions, processIndex: number, dispatcher: MeteredDispatcher): Promise<RdmaStart> {
  if (!options.transports.includes('rdma')) return { reason: 'not in transports' };
  if (processIndex !== RDMA_OWNER_PROCESS_INDEX) return { reason: `owned by process ${RDMA_OWNER_PROCESS_INDEX}` };
  let devices: string[];
  try {
    const verbs = await import('@roce-rpc/verbs');
    devices = verbs.listDevices();
  } catch (error) {
    return { reason: `verbs unavailable: ${(error as Error).message}` };
  }
  if (devices.length === 0) return { reason: 'no RDMA device' };
  const { SvcRdmaServer } = await import('@roce-rpc/svcrdma');
  const server = SvcRdmaServer.listen(dispatcher, { address: options.host, port: options.rdmaPort, workers: options.threads });
  return { server };
}
