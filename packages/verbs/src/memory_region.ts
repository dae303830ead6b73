/**
 * MemoryRegion: a Buffer (or any ArrayBufferView) registered with a
 * protection domain, in place.
 *
 * Life: made by `ProtectionDomain.registerMemory(buffer)`; the native side
 * holds a reference to the buffer until `close()` deregisters it (or, as a
 * backstop, until the region is garbage-collected). Close a region only
 * after the work requests that use it have completed. Do not transfer or
 * detach the underlying ArrayBuffer while it is registered.
 */
import { ACCESS_FLAG } from './constants.js';
import { binding, type MemoryRegionHandle } from './binding.js';
import { native } from './errors.js';
import type { ProtectionDomain } from './protection_domain.js';

/** What the device and peers may do with a region. */
export interface Access {
  /** The device may write into it (needed for Receive and RDMA Read targets). Default true. */
  localWrite?: boolean;
  /** Peers may RDMA Write into it. */
  remoteWrite?: boolean;
  /** Peers may RDMA Read from it. */
  remoteRead?: boolean;
}

/** One scatter/gather element: `length` bytes at `offset` in a region. */
export interface Sge {
  readonly memoryRegion: MemoryRegion;
  readonly offset: number;
  readonly length: number;
}

/** A registered memory region. */
export class MemoryRegion<T extends ArrayBufferView = ArrayBufferView> {
  readonly #handle: MemoryRegionHandle;
  /** The registered memory. */
  readonly buffer: T;

  private constructor(handle: MemoryRegionHandle, buffer: T) {
    this.#handle = handle;
    this.buffer = buffer;
  }

  /** @internal */
  static register<T extends ArrayBufferView>(pd: ProtectionDomain, buffer: T, access: Access): MemoryRegion<T> {
    let bits = 0;
    if (access.localWrite ?? true) bits |= ACCESS_FLAG.LOCAL_WRITE;
    if (access.remoteWrite) bits |= ACCESS_FLAG.REMOTE_WRITE;
    if (access.remoteRead) bits |= ACCESS_FLAG.REMOTE_READ;
    return new MemoryRegion(native(() => binding.mrRegister(pd.handle, buffer, bits)), buffer);
  }

  /** @internal */
  get handle(): MemoryRegionHandle {
    return this.#handle;
  }
  /** Virtual address of the first byte (what a peer uses as remote address). */
  get address(): number {
    return this.#handle.address;
  }
  /** Registered length in bytes. */
  get length(): number {
    return this.#handle.length;
  }
  /** Local key, used in SGEs. */
  get lkey(): number {
    return this.#handle.lkey;
  }
  /** Remote key, for peers' RDMA Read/Write. */
  get rkey(): number {
    return this.#handle.rkey;
  }

  /** An SGE for `length` bytes at `offset` (default: the whole region). */
  sge(offset = 0, length = this.length - offset): Sge {
    return { memoryRegion: this, offset, length };
  }

  /** Deregisters now and releases the buffer reference. Idempotent. */
  close(): void {
    native(() => binding.mrClose(this.#handle));
  }
}
