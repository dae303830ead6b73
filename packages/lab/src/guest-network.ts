/**
 * The guest's network layout, in one place. There is no QEMU NIC: a dummy interface carries the
 * address and rxe0 sits on it, so every RDMA packet stays inside the guest kernel (rxe loops a
 * packet back without touching the link when its destination MAC is its own). 192.0.2.0/24 is
 * TEST-NET-1 (RFC 5737): it can never collide with a real network.
 */

export const guestNetwork = {
  /** The dummy link rxe0 is bound to. */
  netdev: 'lab0',
  /** The address servers listen on and clients connect to inside the guest. */
  address: '192.0.2.1',
  prefixLength: 24,
  /** The soft-RoCE device created on `netdev`. */
  rdmaDevice: 'rxe0',
  rdmaPort: 1,
} as const;

/** Variables every command in the guest gets, so tests need no knowledge of the layout above. */
export function guestNetworkEnvironment(): Record<string, string> {
  return {
    RXE_LAB: '1',
    RXE_LAB_ADDR: guestNetwork.address,
    RXE_LAB_DEVICE: guestNetwork.rdmaDevice,
    RXE_LAB_PORT: String(guestNetwork.rdmaPort),
    RXE_LAB_NETDEV: guestNetwork.netdev,
  };
}
