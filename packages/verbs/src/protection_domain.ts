/**
 * ProtectionDomain: groups memory regions and queue pairs that may be used
 * together.
 *
 * Life: allocated by `Device.allocateProtectionDomain()`, owned by the
 * caller; close it after its memory regions and queue pairs (closing
 * earlier throws EBUSY). Used on the thread that allocated it.
 */
import { binding, type Handle } from './binding.js';
import { native } from './errors.js';
import { MemoryRegion, type Access } from './memory_region.js';

/** A protection domain. */
export class ProtectionDomain {
  readonly #handle: Handle;

  /** @internal Use {@link Device.allocateProtectionDomain}. */
  constructor(handle: Handle) {
    this.#handle = handle;
  }

  /** @internal */
  get handle(): Handle {
    return this.#handle;
  }

  /**
   * Registers `buffer` in place (no copy). The region keeps the buffer
   * alive until it is closed. Default access: local write only.
   */
  registerMemory<T extends ArrayBufferView>(buffer: T, access: Access = {}): MemoryRegion<T> {
    return MemoryRegion.register(this, buffer, access);
  }

  /** Deallocates the PD. @throws VerbsError `EBUSY` while regions or QPs use it. */
  close(): void {
    native(() => binding.pdClose(this.#handle));
  }
}
