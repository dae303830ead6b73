/**
 * CmId: one rdma_cm connection id — an outgoing connection (`connect()`)
 * or an incoming one (a Listener's 'connection' event) — with its queue
 * pair.
 *
 * Life: the caller owns it. Create the QP (`createQueuePair`) before
 * `accept()` / connecting. `disconnect()` starts an orderly teardown
 * ('disconnected' follows on both sides); `close()` destroys the QP and the
 * id at once (posting afterwards throws ERR_VERBS_CLOSED). A peer that
 * vanishes also shows as 'disconnected'. Events arrive on the thread that
 * created the id's channel.
 *
 * Events: 'established', 'disconnected' (with the CmEvent), 'event' (every
 * rdma_cm event, for diagnostics).
 */
import { EventEmitter } from 'node:events';
import { constants as osConstants } from 'node:os';
import { binding, type CmIdHandle, type NativeCmEvent } from './binding.js';
import { CM_EVENT_NAMES, type CmEventType } from './constants.js';
import type { CompletionQueue } from './completion_queue.js';
import { ErrorCode, native, VerbsError } from './errors.js';
import type { EventChannel, EventTarget } from './event_channel.js';
import type { ProtectionDomain } from './protection_domain.js';
import { QueuePair } from './queue_pair.js';

/** An rdma_cm event with its name. */
export interface CmEvent {
  readonly type: CmEventType;
  /** errno (negative) or reject reason, depending on the type. */
  readonly status: number;
  /** Private data the peer attached (connect request, accept, reject). */
  readonly privateData: Buffer;
  readonly responderResources: number;
  readonly initiatorDepth: number;
}

/** Options of {@link CmId.createQueuePair}. */
export interface QueuePairOptions {
  protectionDomain: ProtectionDomain;
  sendCompletionQueue: CompletionQueue;
  recvCompletionQueue: CompletionQueue;
  /** Send queue depth. Default 64. */
  maxSendWr?: number;
  /** Receive queue depth. Default 64. */
  maxRecvWr?: number;
  /** SGEs per Send/RDMA work request, 1..8. Default 1. */
  maxSendSge?: number;
  /** SGEs per Receive, 1..8. Default 1. */
  maxRecvSge?: number;
  /** Bytes a Send may carry inline. Default 0. */
  maxInlineData?: number;
}

/** Connection parameters of connect/accept. */
export interface ConnectionParameters {
  /** Bytes (at most 255; the transport may carry fewer) handed to the peer. */
  privateData?: Uint8Array;
  /** RDMA Reads the peer may have outstanding against us. Default 1. */
  responderResources?: number;
  /** RDMA Reads we may have outstanding against the peer. Default 1. */
  initiatorDepth?: number;
  /** Transport retries (connect only), 0..7. Default 7. */
  retryCount?: number;
  /** Receiver-not-ready retries, 0..7 (7: forever). Default 7. */
  rnrRetryCount?: number;
}

export interface CmIdEvents {
  established: [event: CmEvent];
  disconnected: [event: CmEvent];
  event: [event: CmEvent];
}

const QP_DEFAULTS = { maxSendWr: 64, maxRecvWr: 64, maxSendSge: 1, maxRecvSge: 1, maxInlineData: 0 } as const;
const PARAMETER_DEFAULTS = { responderResources: 1, initiatorDepth: 1, retryCount: 7, rnrRetryCount: 7 } as const;

const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([name, value]) => [value, name]));

/** The event's name. */
export function cmEventName(type: number): CmEventType {
  return CM_EVENT_NAMES[type] ?? 'RDMA_CM_EVENT_UNKNOWN';
}

function toCmEvent(event: NativeCmEvent): CmEvent {
  const { status, privateData, responderResources, initiatorDepth } = event;
  return { type: cmEventName(event.type), status, privateData, responderResources, initiatorDepth };
}

/** The error a failing rdma_cm event stands for. */
export function cmEventError(event: CmEvent, what: string): VerbsError {
  const errnoName = event.status < 0 ? ERRNO_NAMES.get(-event.status) : undefined;
  let code: string;
  switch (event.type) {
    case 'RDMA_CM_EVENT_REJECTED':
      code = 'ECONNREFUSED';
      break;
    case 'RDMA_CM_EVENT_UNREACHABLE':
      code = errnoName === 'ETIMEDOUT' ? 'ETIMEDOUT' : 'EHOSTUNREACH';
      break;
    case 'RDMA_CM_EVENT_CONNECT_ERROR':
      code = 'ECONNABORTED';
      break;
    case 'RDMA_CM_EVENT_DISCONNECTED':
      code = 'ECONNRESET';
      break;
    case 'RDMA_CM_EVENT_DEVICE_REMOVAL':
      code = 'ENODEV';
      break;
    default:
      code = errnoName ?? ErrorCode.CONNECTION_FAILED;
  }
  return new VerbsError(code, `${what}: ${event.type} (status ${event.status})`, {
    errno: event.status < 0 ? -event.status : undefined,
  });
}

interface Waiter {
  readonly success: CmEventType;
  readonly what: string;
  resolve(event: CmEvent): void;
  reject(error: VerbsError): void;
}

/** A connection id with its queue pair. */
export class CmId extends EventEmitter<CmIdEvents> implements EventTarget {
  readonly #handle: CmIdHandle;
  readonly #channel: EventChannel;
  #queuePair: QueuePair | undefined;
  #waiter: Waiter | undefined;
  #established = false;
  #closed = false;
  #peerPrivateData: Buffer = Buffer.alloc(0);

  /** @internal Made by `connect()` and by a Listener. */
  constructor(handle: CmIdHandle, channel: EventChannel) {
    super();
    this.#handle = handle;
    this.#channel = channel;
    channel.register(handle.token, this);
  }

  /** True between ESTABLISHED and DISCONNECTED. */
  get established(): boolean {
    return this.#established;
  }

  /**
   * Private data the peer sent with its connect request (server side) or
   * its accept (client side, once established). Transports may pad it.
   */
  get peerPrivateData(): Buffer {
    return this.#peerPrivateData;
  }

  /** @internal Set by the Listener from the connect request. */
  set peerPrivateData(data: Buffer) {
    this.#peerPrivateData = data;
  }

  /** @internal The native id, for objects built on it natively (svcrdma's service transports). */
  get handle(): CmIdHandle {
    return this.#handle;
  }

  /** The queue pair, once created. */
  get queuePair(): QueuePair | undefined {
    return this.#queuePair;
  }

  /** The RDMA device this id is bound to (after address resolution, or for an incoming request). */
  get deviceName(): string {
    return native(() => binding.cmIdDeviceName(this.#handle));
  }

  /** Local address and port. */
  get localAddress(): { address: string; port: number } {
    return native(() => binding.cmIdAddress(this.#handle, false));
  }

  /** Peer address and port. */
  get peerAddress(): { address: string; port: number } {
    return native(() => binding.cmIdAddress(this.#handle, true));
  }

  /** Creates this id's RC queue pair (once). PD and CQs must be on `deviceName`. */
  createQueuePair(options: QueuePairOptions): QueuePair {
    const filled = { ...QP_DEFAULTS, ...options };
    const handle = native(() =>
      binding.cmIdCreateQueuePair(
        this.#handle,
        filled.protectionDomain.handle,
        filled.sendCompletionQueue.handle,
        filled.recvCompletionQueue.handle,
        filled.maxSendWr,
        filled.maxRecvWr,
        filled.maxSendSge,
        filled.maxRecvSge,
        filled.maxInlineData,
      ),
    );
    this.#queuePair = new QueuePair(handle);
    return this.#queuePair;
  }

  /** @internal Starts address resolution; resolves on ADDR_RESOLVED. */
  resolveAddress(address: string, port: number, timeoutMs: number): Promise<CmEvent> {
    return this.#expect('RDMA_CM_EVENT_ADDR_RESOLVED', `resolve ${address}:${port}`, () =>
      binding.cmIdResolveAddress(this.#handle, address, port, timeoutMs),
    );
  }

  /** @internal Starts route resolution; resolves on ROUTE_RESOLVED. */
  resolveRoute(timeoutMs: number): Promise<CmEvent> {
    return this.#expect('RDMA_CM_EVENT_ROUTE_RESOLVED', 'resolve route', () =>
      binding.cmIdResolveRoute(this.#handle, timeoutMs),
    );
  }

  /** @internal Connects; resolves on ESTABLISHED, rejects ECONNREFUSED etc. */
  connect(parameters: ConnectionParameters): Promise<CmEvent> {
    return this.#expect('RDMA_CM_EVENT_ESTABLISHED', 'connect', () =>
      binding.cmIdConnect(...this.#connectionArguments(parameters)),
    );
  }

  /** Accepts an incoming connection (create the QP first); resolves on ESTABLISHED. */
  accept(parameters: ConnectionParameters = {}): Promise<CmEvent> {
    return this.#expect('RDMA_CM_EVENT_ESTABLISHED', 'accept', () =>
      binding.cmIdAccept(...this.#connectionArguments(parameters)),
    );
  }

  /** Refuses an incoming connection (the peer sees ECONNREFUSED) and closes this id. */
  reject(privateData?: Uint8Array): void {
    native(() => binding.cmIdReject(this.#handle, privateData));
    this.close();
  }

  /** Starts an orderly disconnect; 'disconnected' follows. */
  disconnect(): void {
    native(() => binding.cmIdDisconnect(this.#handle));
  }

  /** Destroys the QP and the id now. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#established = false;
    this.#queuePair?.close();
    native(() => binding.cmIdClose(this.#handle));
    this.#channel.unregister(this.#handle.token);
    this.#waiter?.reject(new VerbsError(ErrorCode.CLOSED, `${this.#waiter.what}: the CmId was closed`));
    this.#waiter = undefined;
  }

  /** @internal Routed here by the EventChannel. */
  handleEvent(native: NativeCmEvent): void {
    const event = toCmEvent(native);
    this.emit('event', event);
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      if (event.type === waiter.success) waiter.resolve(event);
      else waiter.reject(cmEventError(event, waiter.what));
    }
    if (event.type === 'RDMA_CM_EVENT_ESTABLISHED') {
      this.#established = true;
      if (event.privateData.length > 0) this.#peerPrivateData = event.privateData;
      this.emit('established', event);
    } else if (event.type === 'RDMA_CM_EVENT_DISCONNECTED' || event.type === 'RDMA_CM_EVENT_DEVICE_REMOVAL') {
      this.#established = false;
      this.emit('disconnected', event);
    }
  }

  /** The arguments native connect and accept both take: this id, then the parameters filled with their defaults. */
  #connectionArguments(parameters: ConnectionParameters) {
    const filled = { ...PARAMETER_DEFAULTS, ...parameters };
    return [
      this.#handle,
      filled.responderResources,
      filled.initiatorDepth,
      filled.retryCount,
      filled.rnrRetryCount,
      filled.privateData,
    ] as const;
  }

  #expect(success: CmEventType, what: string, start: () => void): Promise<CmEvent> {
    if (this.#waiter !== undefined) {
      throw new VerbsError('EALREADY', `${what}: ${this.#waiter.what} is still in progress`);
    }
    native(start);
    return new Promise((resolve, reject) => {
      this.#waiter = { success, what, resolve, reject };
    });
  }
}
