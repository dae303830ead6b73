/**
 * Loads the native addon (`roce-verbs.linux-x64-gnu.node`, built by
 * `napi build` into the package root) and types its flat functions. Load
 * errors of every candidate are collected and thrown together as the
 * `cause` of one VerbsError, so a broken install says why.
 *
 * The addon is context-aware: each worker thread that imports this module
 * gets its own instance (its own handles, threads and callbacks).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { ErrorCode, VerbsError } from './errors.js';

/** An opaque native handle; `kind` names the object type. */
export interface Handle {
  readonly kind: string;
}
export interface DeviceHandle extends Handle {
  readonly name: string;
}
export interface MemoryRegionHandle extends Handle {
  readonly address: number;
  readonly length: number;
  readonly lkey: number;
  readonly rkey: number;
}
export interface CmIdHandle extends Handle {
  readonly token: number;
}
export interface QueuePairHandle extends Handle {
  readonly qpNumber: number;
  readonly maxSendWr: number;
  readonly maxRecvWr: number;
  readonly maxSendSge: number;
  readonly maxRecvSge: number;
  readonly maxInlineData: number;
}

/** A connection event as the native channel thread delivers it. */
export interface NativeCmEvent {
  readonly type: number;
  readonly status: number;
  readonly token: number;
  readonly listenToken: number;
  readonly responderResources: number;
  readonly initiatorDepth: number;
  readonly privateData: Buffer;
  readonly request?: CmIdHandle;
}

/** Device limits and port 1 state, from `ibv_query_device`/`ibv_query_port`. */
export interface DeviceAttributes {
  readonly name: string;
  readonly firmwareVersion: string;
  readonly nodeGuid: string;
  readonly maxMrSize: number;
  readonly maxQp: number;
  readonly maxQpWr: number;
  readonly maxSge: number;
  readonly maxCq: number;
  readonly maxCqe: number;
  readonly maxMr: number;
  readonly maxPd: number;
  readonly maxQpRdAtom: number;
  readonly maxQpInitRdAtom: number;
  readonly physicalPortCount: number;
  readonly portState: number;
  readonly activeMtu: number;
  readonly linkLayer: number;
  readonly gidTableLength: number;
}

/** The addon's exports (see crates/verbs/src/bindings/). */
export interface Native {
  liveObjects(): Record<string, number>;
  listDevices(): string[];
  openDevice(name: string): DeviceHandle;
  deviceQuery(device: DeviceHandle): DeviceAttributes;
  deviceClose(device: DeviceHandle): void;
  pdAllocate(device: DeviceHandle): Handle;
  pdClose(pd: Handle): void;
  mrRegister(pd: Handle, buffer: ArrayBufferView, access: number): MemoryRegionHandle;
  mrClose(mr: MemoryRegionHandle): void;
  cqCreate(
    device: DeviceHandle,
    depth: number,
    onCompletions: ((records: ArrayBuffer) => void) | null,
    busyPollMicros: number,
    batchMax: number,
    releaseList: Handle | null,
    releaseWrIdLimit: number | null,
    onPending: (() => void) | null,
  ): Handle;
  cqPoll(cq: Handle, out: Uint32Array, max: number, spinMicros: number): number;
  cqWatch(
    device: DeviceHandle,
    depth: number,
    records: Uint32Array,
    onEvent: (count: number, transition: boolean) => void,
    releaseList: Handle | null,
    releaseWrIdLimit: number | null,
    armed: boolean,
  ): Handle;
  cqRoute(cq: Handle, reportTransition: boolean): void;
  cqSetArmed(cq: Handle, armed: boolean): void;
  cqUnref(cq: Handle, keepAlive: boolean): void;
  cqClose(cq: Handle): void;
  channelCreate(onEvent: (event: NativeCmEvent) => void): Handle;
  channelUnref(channel: Handle, keepAlive: boolean): void;
  channelClose(channel: Handle): void;
  cmIdCreate(channel: Handle): CmIdHandle;
  cmIdBind(id: CmIdHandle, address: string, port: number): void;
  cmIdListen(id: CmIdHandle, backlog: number): void;
  cmIdResolveAddress(id: CmIdHandle, address: string, port: number, timeoutMs: number): void;
  cmIdResolveRoute(id: CmIdHandle, timeoutMs: number): void;
  cmIdDeviceName(id: CmIdHandle): string;
  cmIdCreateQueuePair(
    id: CmIdHandle,
    pd: Handle,
    sendCq: Handle,
    recvCq: Handle,
    maxSendWr: number,
    maxRecvWr: number,
    maxSendSge: number,
    maxRecvSge: number,
    maxInlineData: number,
  ): QueuePairHandle;
  cmIdConnect(
    id: CmIdHandle,
    responderResources: number,
    initiatorDepth: number,
    retryCount: number,
    rnrRetryCount: number,
    privateData: Uint8Array | undefined,
  ): void;
  cmIdAccept(
    id: CmIdHandle,
    responderResources: number,
    initiatorDepth: number,
    retryCount: number,
    rnrRetryCount: number,
    privateData: Uint8Array | undefined,
  ): void;
  cmIdReject(id: CmIdHandle, privateData: Uint8Array | undefined): void;
  cmIdDisconnect(id: CmIdHandle): void;
  cmIdAddress(id: CmIdHandle, peer: boolean): { address: string; port: number };
  cmIdClose(id: CmIdHandle): void;
  qpPostSend(
    qp: QueuePairHandle,
    wrId: number,
    opcode: number,
    flags: number,
    remoteAddress: number | bigint,
    rkey: number,
    immediate: number,
    ...sges: (MemoryRegionHandle | number)[]
  ): void;
  qpPostRecv(qp: QueuePairHandle, wrId: number, ...sges: (MemoryRegionHandle | number)[]): void;
  qpPostSendAndDrain(
    qp: QueuePairHandle,
    wrId: number,
    mr: MemoryRegionHandle,
    offset: number,
    length: number,
    sendCq: Handle,
    releaseList: Handle,
    out: Float64Array,
  ): number;
  qpDrain(qp: QueuePairHandle, onDrained: () => void): void;
  qpSendQueueState(qp: QueuePairHandle): { available: number; failed: boolean };
  qpWaitSendQueue(qp: QueuePairHandle, entries: number, onSpace: () => void): boolean;
  qpClose(qp: QueuePairHandle): void;
  batchCreate(qp: QueuePairHandle, cq: Handle | null, capacity: number, completionsMax: number, ...regions: MemoryRegionHandle[]): Handle;
  batchSubmit(batch: Handle, slots: Float64Array, count: number, spinMicros: number): number;
  batchClose(batch: Handle): void;
  releaseListCreate(capacity: number, onPending: (() => void) | null): Handle;
  releaseListPush(list: Handle, wrId: number, failed: boolean): boolean;
  releaseListDrain(list: Handle, out: Float64Array): number;
  releaseListLength(list: Handle): number;
  releaseListClosing(list: Handle): boolean;
  releaseListClose(list: Handle): void;
}

/** File name `napi build --platform` gives the addon on this platform. */
export const NATIVE_FILE = 'roce-verbs.linux-x64-gnu.node';

function load(): Native {
  const require = createRequire(import.meta.url);
  const packageRoot = join(fileURLToPath(new URL('.', import.meta.url)), '..');
  const candidates = [join(packageRoot, NATIVE_FILE)];
  if (process.env['ROCE_VERBS_NATIVE']) candidates.unshift(process.env['ROCE_VERBS_NATIVE']);
  const failures: unknown[] = [];
  for (const candidate of candidates) {
    try {
      return require(candidate) as Native;
    } catch (error) {
      failures.push(error);
    }
  }
  throw new VerbsError(
    ErrorCode.LOAD_FAILED,
    `cannot load the roce-verbs addon (tried ${candidates.join(', ')}); run the package's build`,
    { cause: new AggregateError(failures, 'load failures') },
  );
}

/** The addon of this environment (main thread or worker). */
export const binding: Native = load();
