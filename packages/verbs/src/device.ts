/**
 * Device: an RDMA device opened by name (`openDevice('rxe0')`).
 *
 * Life: opened by the caller, who owns it and closes it after the
 * protection domains and completion queues made on it (closing earlier
 * throws EBUSY). Main thread or any worker; each thread opens its own.
 */
import { binding, type DeviceAttributes, type DeviceHandle } from './binding.js';
import { native } from './errors.js';
import { ProtectionDomain } from './protection_domain.js';
import { CompletionQueue, type CompletionQueueOptions } from './completion_queue.js';

export type { DeviceAttributes };

/** Names of the RDMA devices present (empty when there are none). */
export function listDevices(): string[] {
  return native(() => binding.listDevices());
}

/**
 * Opens the RDMA device called `name`.
 * @throws VerbsError `ENODEV` when there is no such device.
 */
export function openDevice(name: string): Device {
  return new Device(native(() => binding.openDevice(name)));
}

/** An open RDMA device. */
export class Device {
  readonly #handle: DeviceHandle;

  /** @internal Use {@link openDevice}. */
  constructor(handle: DeviceHandle) {
    this.#handle = handle;
  }

  /** The device's name, e.g. `'rxe0'`. */
  get name(): string {
    return this.#handle.name;
  }

  /** @internal */
  get handle(): DeviceHandle {
    return this.#handle;
  }

  /** Device limits and the state of port 1. */
  query(): DeviceAttributes {
    return native(() => binding.deviceQuery(this.#handle));
  }

  /** Allocates a protection domain on this device. */
  allocateProtectionDomain(): ProtectionDomain {
    return new ProtectionDomain(native(() => binding.pdAllocate(this.#handle)));
  }

  /**
   * Creates a completion queue. With `onCompletions` a native completion
   * thread polls it and delivers batches; without, call `poll()`.
   */
  createCompletionQueue(options: CompletionQueueOptions = {}): CompletionQueue {
    return CompletionQueue.create(this.#handle, options);
  }

  /** Closes the device. @throws VerbsError `EBUSY` while PDs or CQs are open. */
  close(): void {
    native(() => binding.deviceClose(this.#handle));
  }
}
