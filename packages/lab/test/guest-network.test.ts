/** The guest's network layout as tests see it. */
import { describe, expect, test } from 'vitest';
import { guestNetwork, guestNetworkEnvironment, ipv4MappedGid, vethPairNetwork } from '../src/guest-network.js';
import { stageTwoScript } from '../src/guest-scripts.js';

describe('the guest network environment', () => {
  test('names the address, device, port and link, all inside TEST-NET-1', () => {
    expect(guestNetworkEnvironment()).toEqual({
      RXE_LAB: '1',
      RXE_LAB_ADDR: '192.0.2.1',
      RXE_LAB_DEVICE: 'rxe0',
      RXE_LAB_PORT: '1',
      RXE_LAB_NETDEV: 'lab0',
    });
    expect(guestNetwork.address.startsWith('192.0.2.')).toBe(true);
  });
});

describe('the veth-pair layout', () => {
  test('keeps the default names for the a end and adds the peer end', () => {
    expect(guestNetworkEnvironment('veth-pair')).toEqual({
      RXE_LAB: '1',
      RXE_LAB_NETWORK: 'veth-pair',
      RXE_LAB_ADDR: '192.0.2.1',
      RXE_LAB_DEVICE: 'rxe0',
      RXE_LAB_PORT: '1',
      RXE_LAB_NETDEV: 'lab0a',
      RXE_LAB_PEER_ADDR: '192.0.2.2',
      RXE_LAB_PEER_DEVICE: 'rxe1',
      RXE_LAB_PEER_NETDEV: 'lab0b',
    });
  });

  test('routes each address out of the other end and finds both GID indexes; the default script has none of it', () => {
    const input = { cwd: '/w', command: ['true'], environment: {}, guardSeconds: 60 };
    const veth = stageTwoScript({ ...input, network: 'veth-pair' });
    const { netdev, peerNetdev, address, peerAddress } = vethPairNetwork;
    expect(veth).toContain(`route add ${peerAddress}/32 dev ${netdev} src ${address}`);
    expect(veth).toContain(`route add ${address}/32 dev ${peerNetdev} src ${peerAddress}`);
    expect(veth).toContain('rule del pref 0 lookup local');
    expect(veth).toContain('"RXE_LAB_PEER_GID_INDEX=$RXE_LAB_PEER_GID_INDEX"');
    const single = stageTwoScript({ ...input, network: 'single' });
    expect(single).toContain('link add lab0 type dummy');
    expect(single).not.toMatch(/veth|rule|RXE_LAB_PEER/);
  });
});

describe('the guest GID of an IPv4 address', () => {
  test('is the IPv4-mapped IPv6 address as sysfs spells it', () => {
    expect(ipv4MappedGid('192.0.2.1')).toBe('0000:0000:0000:0000:0000:ffff:c000:0201');
    expect(ipv4MappedGid('10.255.0.7')).toBe('0000:0000:0000:0000:0000:ffff:0aff:0007');
    expect(() => ipv4MappedGid('192.0.2')).toThrow(/not an IPv4 address/);
    expect(() => ipv4MappedGid('192.0.2.256')).toThrow(/not an IPv4 address/);
  });
});
