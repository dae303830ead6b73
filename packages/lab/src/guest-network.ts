/**
 * The guest's network layouts, in one place. There is no QEMU NIC: traffic stays inside the guest.
 * 192.0.2.0/24 is TEST-NET-1 (RFC 5737): it can never collide with a real network.
 *
 * - `single` (the default): a dummy interface carries the address and rxe0 sits on it; rxe loops
 *   every packet back inside the kernel (source and destination address are the same), so nothing
 *   crosses a link and a capture sees nothing.
 * - `veth-pair`: two rxe devices on the two ends of a veth pair, in the one network namespace (rxe
 *   in 6.1 opens its UDP socket in the initial namespace only). Both addresses are local, so policy
 *   routing sends locally generated traffic for each address out of the *other* end: every RoCEv2
 *   packet crosses the veth, where a packet capture sees it.
 */
export type LabNetwork = 'single' | 'veth-pair';

export const labNetworks: readonly LabNetwork[] = ['single', 'veth-pair'];


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
 * The veth-pair layout. The address, device and netdev tests use by default (RXE_LAB_ADDR, ...)
 * are the `a` end's; the `b` end is the peer. Traffic to either address leaves through the other
 * end, so a client of 192.0.2.1 runs on rxe1 and its server on rxe0. Fixed MACs let the neighbour
 * entries be static: no ARP between two local addresses (which Linux answers oddly) and no wait.
 */
export const vethPairNetwork = {
  netdev: 'lab0a',
  address: '192.0.2.1',
  rdmaDevice: 'rxe0',
  macAddress: '02:00:c0:00:02:01',
  peerNetdev: 'lab0b',
  peerAddress: '192.0.2.2',
  peerRdmaDevice: 'rxe1',
  peerMacAddress: '02:00:c0:00:02:02',
  rdmaPort: 1,
} as const;

/**
 * Found by stage two once rxe0 is up and exported as this variable: the GID table index of
 * `address` (the IPv4-mapped RoCE v2 GID), which tools that do not use rdma_cm need (perftest -x).
 */
export const gidIndexVariable = 'RXE_LAB_GID_INDEX';
/** The same for the peer address on the peer device (veth-pair only). */
export const peerGidIndexVariable = 'RXE_LAB_PEER_GID_INDEX';

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
export function guestNetworkEnvironment(network: LabNetwork = 'single'): Record<string, string> {
  if (network === 'single') {
    return {
      RXE_LAB: '1',
      RXE_LAB_ADDR: guestNetwork.address,
      RXE_LAB_DEVICE: guestNetwork.rdmaDevice,
      RXE_LAB_PORT: String(guestNetwork.rdmaPort),
      RXE_LAB_NETDEV: guestNetwork.netdev,
    };
  }
  const veth = vethPairNetwork;
  return {
    RXE_LAB: '1',
    RXE_LAB_NETWORK: network,
    RXE_LAB_ADDR: veth.address,
    RXE_LAB_DEVICE: veth.rdmaDevice,
    RXE_LAB_PORT: String(veth.rdmaPort),
    RXE_LAB_NETDEV: veth.netdev,
    RXE_LAB_PEER_ADDR: veth.peerAddress,
    RXE_LAB_PEER_DEVICE: veth.peerRdmaDevice,
    RXE_LAB_PEER_NETDEV: veth.peerNetdev,
  };
}

/** The layout of the guest this process runs in (stage two exported RXE_LAB_NETWORK for all but the default). */
export function currentLabNetwork(): LabNetwork {
  return process.env.RXE_LAB_NETWORK === 'veth-pair' ? 'veth-pair' : 'single';
}
