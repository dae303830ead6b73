/**
 * Listener: the passive side of rdma_cm (`listen()`).
 *
 * Life: `listen()` binds and listens; each connect request arrives as a
 * 'connection' event with a new CmId that the listener's owner must either
 * accept (after creating its QP) or reject. Connections outlive the
 * listener: `close()` stops listening, accepted CmIds are closed by their
 * owners. Events arrive on the thread that called `listen()`.
 */
import { EventEmitter } from 'node:events';
import type { NativeCmEvent } from './binding.js';
import { binding, type CmIdHandle } from './binding.js';
import { CmId, cmEventName } from './cm_id.js';
import { native } from './errors.js';
import { EventChannel, type EventTarget } from './event_channel.js';

/** Options of {@link listen}. */
export interface ListenOptions {
  /** Local address to bind (an address of the RDMA device's interface, or '0.0.0.0'). */
  address: string;
  /** Port; 0 picks a free one (see `Listener.port`). */
  port: number;
  /** Connect requests queued in the kernel. Default 64. */
  backlog?: number;
}

/** A connect request: accept it or reject it. */
export interface ConnectionRequest {
  /** The new connection's id: create its QP, then `accept()` (or `reject()`). */
  readonly cmId: CmId;
  /** Private data the client sent. */
  readonly privateData: Buffer;
  /** RDMA Reads the client may have outstanding against us. */
  readonly initiatorDepth: number;
  /** RDMA Reads the client will serve for us. */
  readonly responderResources: number;
}

export interface ListenerEvents {
  connection: [request: ConnectionRequest];
}

const DEFAULT_BACKLOG = 64;

/** A listening rdma_cm id. */
export class Listener extends EventEmitter<ListenerEvents> implements EventTarget {
  readonly #channel: EventChannel;
  readonly #handle: CmIdHandle;
  #closed = false;

  /** @internal Use {@link listen}. */
  constructor(channel: EventChannel, handle: CmIdHandle) {
    super();
    this.#channel = channel;
    this.#handle = handle;
    channel.register(handle.token, this);
  }

  /** The bound address and port. */
  get localAddress(): { address: string; port: number } {
    return native(() => binding.cmIdAddress(this.#handle, false));
  }

  /** The bound port. */
  get port(): number {
    return this.localAddress.port;
  }

  /** Stops listening. Accepted connections stay open. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    native(() => binding.cmIdClose(this.#handle));
    this.#channel.unregister(this.#handle.token);
  }

  /** Lets the process exit while listening (or not). */
  unref(unreferenced = true): void {
    this.#channel.unref(unreferenced);
  }

  /** @internal Routed here by the EventChannel. */
  handleEvent(event: NativeCmEvent): void {
    if (event.request === undefined || cmEventName(event.type) !== 'RDMA_CM_EVENT_CONNECT_REQUEST') return;
    const cmId = new CmId(event.request, this.#channel);
    if (this.#closed || this.listenerCount('connection') === 0) {
      cmId.reject();
      return;
    }
    const { privateData, initiatorDepth, responderResources } = event;
    cmId.peerPrivateData = privateData;
    this.emit('connection', { cmId, privateData, initiatorDepth, responderResources });
  }
}

/** Binds to `address:port` and listens for RC connections. */
export function listen(options: ListenOptions): Listener {
  const channel = new EventChannel();
  const handle = channel.createId();
  const listener = new Listener(channel, handle);
  try {
    native(() => {
      binding.cmIdBind(handle, options.address, options.port);
      binding.cmIdListen(handle, options.backlog ?? DEFAULT_BACKLOG);
    });
  } catch (error) {
    listener.close();
    throw error;
  }
  return listener;
}
