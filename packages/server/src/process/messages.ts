/**
 * Messages between the supervisor (cluster primary) and its server
 * processes over the cluster IPC channel. prom-client's aggregator shares
 * the channel; its messages carry `type`, ours `kind`.
 */

export interface ProcessReady {
  kind: 'ready';
  processIndex: number;
  pid: number;
  tcpPort: number | null;
  udpPort: number | null;
  rdmaPort: number | null;
  /** Why RDMA is off in this process (null when it serves RDMA). */
  rdmaOff: string | null;
  /** The NFS export's ports when this process serves it (the `nfs` option), else null. */
  nfs: { port: number; mountPort: number; rdmaPort: number | null } | null;
  /** Why this process does not serve the NFS export ('off', 'owned by process 0'); null when it does. */
  nfsOff: string | null;
}

export interface ProcessStartFailed {
  kind: 'start-failed';
  processIndex: number;
  code: string;
  message: string;
}

/** A warm spare has booted and listens for ActivateSpare (sent earlier, the activation could be lost). */
export interface SpareWaiting {
  kind: 'spare-waiting';
}

export type ProcessMessage = ProcessReady | ProcessStartFailed | SpareWaiting;

const PROCESS_MESSAGE_KINDS: ReadonlySet<string> = new Set(['ready', 'start-failed', 'spare-waiting']);

export function isProcessMessage(message: unknown): message is ProcessMessage {
  return typeof message === 'object' && message !== null && PROCESS_MESSAGE_KINDS.has((message as ProcessMessage).kind);
}

/** Environment a server process starts with. */
export const ENV_PROCESS_INDEX = 'ROCE_RPC_PROCESS_INDEX';
export const ENV_FILLED_OPTIONS = 'ROCE_RPC_FILLED_OPTIONS';
export const ENV_INSTANCE_ID = 'ROCE_RPC_INSTANCE_ID';

/** Supervisor → warm spare: take over the slot of a process that died. */
export interface ActivateSpare {
  kind: 'activate';
  processIndex: number;
}

export function isActivateSpare(message: unknown): message is ActivateSpare {
  return typeof message === 'object' && message !== null && (message as ActivateSpare).kind === 'activate';
}

/** ENV_PROCESS_INDEX of a warm spare: it waits for ActivateSpare before it starts. */
export const SPARE_PROCESS_INDEX = 'spare';
