/**
 * OpenDevices: the RDMA devices a listener's connections arrived on, each
 * opened once with one protection domain that every connection on it shares.
 *
 * Life: one per server (main-thread or threaded), created with it; a device
 * is opened by the first connection request that names it and stays open
 * until the server's close() calls closeAll(), after every connection's
 * teardown. Main thread.
 */
import { openDevice, type Device, type ProtectionDomain } from '@roce-rpc/verbs';

export interface OpenDevice {
  readonly device: Device;
  readonly protectionDomain: ProtectionDomain;
}

export class OpenDevices {
  /** Bounded by the devices of the host (a handful). */
  private readonly byName = new Map<string, OpenDevice>();

  get(name: string): OpenDevice {
    let open = this.byName.get(name);
    if (open === undefined) {
      const device = openDevice(name);
      open = { device, protectionDomain: device.allocateProtectionDomain() };
      this.byName.set(name, open);
    }
    return open;
  }

  closeAll(): void {
    for (const { device, protectionDomain } of this.byName.values()) {
      protectionDomain.close();
      device.close();
    }
    this.byName.clear();
  }
}
