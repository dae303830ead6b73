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

/**
 * Found by stage two once rxe0 is up and exported as this variable: the GID table index of
 * `address` (the IPv4-mapped RoCE v2 GID), which tools that do not use rdma_cm need (perftest -x).
 */
export const gidIndexVariable = 'RXE_LAB_GID_INDEX';

/** The GID rxe derives from an IPv4 address (::ffff:a.b.c.d), spelled as sysfs prints it. */
export function ipv4MappedGid(address: string): string {
  const octets = address.split('.').map(Number);
  if (octets.length !== 4 || octets.some((octet) => !Number.isInteger(octet) || octet < 0 || octet > 255)) {
    throw new Error(`not an IPv4 address: ${address}`);
  }
  const hex = octets.map((octet) => octet.toString(16).padStart(2, '0'));
  return `0000:0000:0000:0000:0000:ffff:${hex[0]}${hex[1]}:${hex[2]}${hex[3]}`;
}

/** Variables every command in the guest gets (with RXE_LAB_GID_INDEX), so tests need no knowledge of the layout above. */
export function guestNetworkEnvironment(): Record<string, string> {
  return {
    RXE_LAB: '1',
    RXE_LAB_ADDR: guestNetwork.address,
    RXE_LAB_DEVICE: guestNetwork.rdmaDevice,
    RXE_LAB_PORT: String(guestNetwork.rdmaPort),
    RXE_LAB_NETDEV: guestNetwork.netdev,
  };
}
