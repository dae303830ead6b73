/** The guest's network layout as tests see it. */
import { describe, expect, test } from 'vitest';
import { guestNetwork, guestNetworkEnvironment, ipv4MappedGid } from '../src/guest-network.js';

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

describe('the guest GID of an IPv4 address', () => {
  test('is the IPv4-mapped IPv6 address as sysfs spells it', () => {
    expect(ipv4MappedGid('192.0.2.1')).toBe('0000:0000:0000:0000:0000:ffff:c000:0201');
    expect(ipv4MappedGid('10.255.0.7')).toBe('0000:0000:0000:0000:0000:ffff:0aff:0007');
    expect(() => ipv4MappedGid('192.0.2')).toThrow(/not an IPv4 address/);
    expect(() => ipv4MappedGid('192.0.2.256')).toThrow(/not an IPv4 address/);
  });
});
