/**
 * RpcbindClient: registers services with, and looks them up in, rpcbind
 * (RFC 1833) over TCP - version 4 SET/UNSET/GETADDR with universal addresses,
 * and the version 2 portmapper SET/UNSET/GETPORT.
 *
 * Life: created by `RpcbindClient.connect()`, owned by the caller, closed with
 * close(); main thread. It owns one OncRpcTcpClient.
 *
 * rpcbind only accepts SET/UNSET from local callers; Linux rpcbind also wants
 * a privileged source port for TCP callers, which `localPort` provides to root.
 */
import { OncRpcTcpClient } from '../tcp/client.js';
import type { Dispatcher } from '../dispatcher.js';
import {
  IPPROTO_TCP,
  PMAP_PORT,
  PMAP_PROG,
  PMAP_PROG_PMAP_VERS_DESCRIPTOR,
  PMAP_VERS,
  RPCBPROG,
  RPCBPROG_RPCBVERS4_DESCRIPTOR,
  RPCBVERS4,
  type mapping,
  type rpcb,
} from './rpcbind-protocol.generated.js';

export interface RpcbindClientOptions {
  host?: string;
  port?: number;
  timeoutMs?: number;
  localPort?: number;
}

export interface RpcbindMapping {
  program: number;
  version: number;
  /** Network id: 'tcp', 'udp', 'tcp6', 'rdma'... */
  netid: string;
  /** Universal address, e.g. '127.0.0.1.8.1' for port 2049. */
  address: string;
  owner: string;
}

const [rpcbSet, rpcbUnset, rpcbGetaddr] = RPCBPROG_RPCBVERS4_DESCRIPTOR.procedures;
const [, pmapSet, pmapUnset, pmapGetport] = PMAP_PROG_PMAP_VERS_DESCRIPTOR.procedures;

/** RFC 5665 §5.2.3.3: h1.h2.h3.h4.p1.p2 for IPv4, with the port as two decimal octets. */
export function universalAddress(host: string, port: number): string {
  return `${host}.${port >> 8}.${port & 0xff}`;
}

export function parseUniversalAddress(address: string): { host: string; port: number } | null {
  const match = /^(.*)\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  if (!match) return null;
  const high = Number(match[2]);
  const low = Number(match[3]);
  if (high > 255 || low > 255) return null;
  return { host: match[1]!, port: (high << 8) | low };
}

export class RpcbindClient {
  private constructor(private readonly client: OncRpcTcpClient) {}

  static async connect(options: RpcbindClientOptions = {}): Promise<RpcbindClient> {
    const client = await OncRpcTcpClient.connect({
      host: options.host ?? '127.0.0.1',
      port: options.port ?? PMAP_PORT,
      timeoutMs: options.timeoutMs ?? 5000,
      ...(options.localPort !== undefined ? { localPort: options.localPort } : {}),
    });
    return new RpcbindClient(client);
  }

  set(mapping: RpcbindMapping): Promise<boolean> {
    return this.client.call(RPCBPROG, RPCBVERS4, rpcbSet, toRpcb(mapping));
  }

  unset(mapping: Omit<RpcbindMapping, 'address'>): Promise<boolean> {
    return this.client.call(RPCBPROG, RPCBVERS4, rpcbUnset, toRpcb({ ...mapping, address: '' }));
  }

  /** The universal address registered for program/version/netid, or '' when none. */
  getAddress(program: number, version: number, netid: string): Promise<string> {
    return this.client.call(RPCBPROG, RPCBVERS4, rpcbGetaddr, toRpcb({ program, version, netid, address: '', owner: '' }));
  }

  pmapSet(program: number, version: number, port: number, protocol = IPPROTO_TCP): Promise<boolean> {
    return this.client.call(PMAP_PROG, PMAP_VERS, pmapSet, toMapping(program, version, protocol, port));
  }

  pmapUnset(program: number, version: number, protocol = IPPROTO_TCP): Promise<boolean> {
    return this.client.call(PMAP_PROG, PMAP_VERS, pmapUnset, toMapping(program, version, protocol, 0));
  }

  /** The port registered for program/version/protocol, or 0 when none. */
  pmapGetPort(program: number, version: number, protocol = IPPROTO_TCP): Promise<number> {
    return this.client.call(PMAP_PROG, PMAP_VERS, pmapGetport, toMapping(program, version, protocol, 0));
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

function toRpcb(mapping: RpcbindMapping): rpcb {
  return { r_prog: mapping.program, r_vers: mapping.version, r_netid: mapping.netid, r_addr: mapping.address, r_owner: mapping.owner };
}

function toMapping(prog: number, vers: number, prot: number, port: number): mapping {
  return { prog, vers, prot, port };
}

/**
 * Registers every program/version a dispatcher serves on a TCP port, replacing
 * stale registrations. Returns a function that unregisters them.
 */
export async function registerTcpService(
  dispatcher: Pick<Dispatcher, 'registrations'>,
  service: { host: string; port: number },
  options: RpcbindClientOptions & { owner?: string } = {},
): Promise<() => Promise<void>> {
  const owner = options.owner ?? 'roce-rpc';
  const registrations = dispatcher.registrations();
  const client = await RpcbindClient.connect(options);
  try {
    for (const { program, version } of registrations) {
      await client.unset({ program, version, netid: 'tcp', owner });
      const address = universalAddress(service.host, service.port);
      if (!(await client.set({ program, version, netid: 'tcp', address, owner }))) {
        throw new Error(`rpcbind refused to register program ${program} version ${version}`);
      }
    }
  } finally {
    await client.close();
  }
  return async () => {
    const cleanup = await RpcbindClient.connect(options);
    try {
      for (const { program, version } of registrations) await cleanup.unset({ program, version, netid: 'tcp', owner });
    } finally {
      await cleanup.close();
    }
  };
}
