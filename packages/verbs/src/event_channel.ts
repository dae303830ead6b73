/**
 * EventChannel (internal): one native rdma_cm event channel and the
 * routing of its events to the objects they are for.
 *
 * Life: created by `listen()` (shared by the listener and every connection
 * it accepts) or by `connect()` (one per outgoing connection). Each CmId or
 * Listener registers under its token; the channel closes its native handle
 * once the last one unregisters. Events arrive on the creating thread.
 */
import { binding, type CmIdHandle, type Handle, type NativeCmEvent } from './binding.js';
import { native } from './errors.js';

/** Receives the events of one token. */
export interface EventTarget {
  handleEvent(event: NativeCmEvent): void;
}

export class EventChannel {
  readonly #handle: Handle;
  readonly #targets = new Map<number, EventTarget>();
  #closed = false;

  constructor() {
    this.#handle = native(() => binding.channelCreate((event) => this.#dispatch(event)));
  }

  /** A new connection id on this channel. */
  createId(): CmIdHandle {
    return native(() => binding.cmIdCreate(this.#handle));
  }

  /** Routes events for `token` to `target`. */
  register(token: number, target: EventTarget): void {
    if (this.#targets.has(token)) throw new Error(`token ${token} registered twice`);
    this.#targets.set(token, target);
  }

  /** Stops routing `token`; the last one out closes the channel. */
  unregister(token: number): void {
    this.#targets.delete(token);
    if (this.#targets.size === 0 && !this.#closed) {
      this.#closed = true;
      native(() => binding.channelClose(this.#handle));
    }
  }

  /** Lets the process exit while this channel is open (or not). */
  unref(unreferenced: boolean): void {
    native(() => binding.channelUnref(this.#handle, !unreferenced));
  }

  #dispatch(event: NativeCmEvent): void {
    // A connect request is for the listener; its new id gets its own token.
    const token = event.request === undefined ? event.token : event.listenToken;
    const target = this.#targets.get(token);
    if (target !== undefined) {
      target.handleEvent(event);
    } else if (event.request !== undefined) {
      // Nobody listens any more: refuse and free the orphan request.
      const request = event.request;
      native(() => {
        binding.cmIdReject(request, undefined);
        binding.cmIdClose(request);
      });
    }
  }
}
