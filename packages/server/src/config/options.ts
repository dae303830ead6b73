/**
 * Server options: Options (all optional, what a user writes) → FilledOptions
 * (all present, validated) with the defaults in ONE place, kOptionSpecs. The
 * same table drives the CLI flags, `--help`, the JSON config file and the
 * ROCE_RPC_* environment overrides (config/sources.ts), so an option exists in
 * all four or in none.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { invalidField } from '../errors.js';

export const TRANSPORTS = ['tcp', 'udp', 'rdma'] as const;
export type TransportName = (typeof TRANSPORTS)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface FilledServerOptions {
  /** Server processes the supervisor keeps running. */
  processes: number;
  /** piscina worker threads per process that run procedures of TCP and RDMA calls. */
  threads: number;
  /** RxRPC channel worker threads per process that run procedures of UDP calls. */
  rxThreads: number;
  host: string;
  transports: TransportName[];
  tcpPort: number;
  udpPort: number;
  rdmaPort: number;
  metricsHost: string;
  /** 0 picks a free port (printed at start). */
  metricsPort: number;
  /** Module (path or URL) whose default export is a service definition (defineService). */
  service: string;
  /** Passed to the service's init() in every thread. */
  serviceOptions: Record<string, unknown>;
  /** TCP connections per process; more are closed at accept. */
  maxConnections: number;
  /** Calls in service per process; more are refused with the protocol's error reply. */
  maxInFlightCalls: number;
  /** Calls in service per TCP connection before the connection stops being read. */
  maxInFlightCallsPerConnection: number;
  /** SIGTERM: longest wait for in-flight calls before the process exits anyway. */
  drainTimeoutMs: number;
  /** Restart delay after a second quick death (the first restarts at once); doubles per quick death up to restartBackoffMaxMs. */
  restartBackoffMs: number;
  restartBackoffMaxMs: number;
  logLevel: LogLevel;
  /**
   * NFSv3 + MOUNT v3 (@roce-rpc/nfs3) beside the service: 'off', 'memory' (an in-memory export)
   * or the absolute path of a directory to export. Served by server process 0 (src/nfs/nfs-export.ts).
   */
  nfs: string;
  /** NFS over TCP (0: any). */
  nfsPort: number;
  /** MOUNT over TCP (0: any). */
  nfsMountPort: number;
  /** NFS over RDMA; must differ from rdmaPort while the service itself runs over RDMA (one rdma_cm listener per port). */
  nfsRdmaPort: number;
  /**
   * 0: NFS over RDMA on process 0's main thread. 1..64: on that many of svcrdma's worker threads
   * (SvcRdmaThreadedServer, a directory store per thread); a directory export only.
   */
  nfsRdmaThreads: number;
  /** Directory export: file holding the handle secret (created when missing), so handles survive restarts. */
  nfsSecretFile: string;
}

export type ServerOptions = Partial<FilledServerOptions>;

type Kind = 'integer' | 'string' | 'transports' | 'logLevel' | 'object' | 'nfsExport';

export interface OptionSpec {
  readonly name: keyof FilledServerOptions;
  readonly kind: Kind;
  readonly description: string;
  readonly min?: number;
  readonly max?: number;
}

const PORT = { min: 0, max: 65_535 } as const;

/** Every option, in --help order. */
export const kOptionSpecs: readonly OptionSpec[] = [
  { name: 'processes', kind: 'integer', min: 1, max: 256, description: 'server processes (default: CPU cores)' },
  { name: 'threads', kind: 'integer', min: 1, max: 256, description: 'procedure worker threads per process (TCP, RDMA)' },
  { name: 'rxThreads', kind: 'integer', min: 0, max: 64, description: 'RxRPC channel worker threads per process (UDP; 0: channels and handlers on the main thread, no thread hop per call)' },
  { name: 'host', kind: 'string', description: 'address to listen on' },
  { name: 'transports', kind: 'transports', description: 'comma-separated subset of tcp,udp,rdma' },
  { name: 'tcpPort', kind: 'integer', ...PORT, description: 'ONC RPC over TCP port (0: any)' },
  { name: 'udpPort', kind: 'integer', ...PORT, description: 'RxRPC over UDP port (0 only with one process)' },
  { name: 'rdmaPort', kind: 'integer', ...PORT, description: 'RPC-over-RDMA port' },
  { name: 'metricsHost', kind: 'string', description: 'address of the /metrics HTTP endpoint' },
  { name: 'metricsPort', kind: 'integer', ...PORT, description: 'port of the /metrics HTTP endpoint (0: any)' },
  { name: 'service', kind: 'string', description: 'module whose default export is the service definition' },
  { name: 'serviceOptions', kind: 'object', description: 'JSON object passed to the service init()' },
  { name: 'maxConnections', kind: 'integer', min: 1, max: 1 << 20, description: 'TCP connections per process' },
  { name: 'maxInFlightCalls', kind: 'integer', min: 1, max: 1 << 20, description: 'calls in service per process; more get an error reply' },
  { name: 'maxInFlightCallsPerConnection', kind: 'integer', min: 1, max: 65_536, description: 'calls in service per TCP connection' },
  { name: 'drainTimeoutMs', kind: 'integer', min: 0, max: 600_000, description: 'SIGTERM: longest wait for in-flight calls' },
  { name: 'restartBackoffMs', kind: 'integer', min: 0, max: 60_000, description: 'restart delay after a second quick death (the first restarts at once), doubling' },
  { name: 'restartBackoffMaxMs', kind: 'integer', min: 0, max: 600_000, description: 'longest restart delay' },
  { name: 'logLevel', kind: 'logLevel', description: LOG_LEVELS.join('|') },
  { name: 'nfs', kind: 'nfsExport', description: 'NFSv3 export served beside the service by server process 0: off|memory|/absolute/directory' },
  { name: 'nfsPort', kind: 'integer', ...PORT, description: 'NFSv3 over TCP port (0: any)' },
  { name: 'nfsMountPort', kind: 'integer', ...PORT, description: 'MOUNT v3 over TCP port (0: any)' },
  { name: 'nfsRdmaPort', kind: 'integer', min: 1, max: 65_535, description: 'NFSv3 over RDMA port' },
  { name: 'nfsRdmaThreads', kind: 'integer', min: 0, max: 64, description: "NFSv3 over RDMA served by this many svcrdma worker threads (0: process 0's main thread); directory export only" },
  { name: 'nfsSecretFile', kind: 'string', description: 'directory export: handle secret file (created when missing)' },
];

export const kDefaultServerOptions: Readonly<FilledServerOptions> = Object.freeze({
  processes: Math.max(1, os.availableParallelism()),
  threads: 2,
  rxThreads: 1,
  host: '127.0.0.1',
  transports: ['tcp', 'udp', 'rdma'],
  tcpPort: 7011,
  udpPort: 7012,
  rdmaPort: 20049,
  metricsHost: '127.0.0.1',
  metricsPort: 9464,
  service: fileURLToPath(new URL('../service/demo-service.js', import.meta.url)),
  serviceOptions: {},
  maxConnections: 1024,
  maxInFlightCalls: 1024,
  maxInFlightCallsPerConnection: 32,
  drainTimeoutMs: 5_000,
  restartBackoffMs: 100,
  restartBackoffMaxMs: 5_000,
  logLevel: 'info',
  nfs: 'off',
  nfsPort: 2049,
  nfsMountPort: 20048,
  nfsRdmaPort: 20049,
  nfsRdmaThreads: 0,
  nfsSecretFile: path.join(os.tmpdir(), 'roce-rpc-nfs3.secret'),
}) as FilledServerOptions;

function checkValue(spec: OptionSpec, value: unknown): unknown {
  const field = spec.name;
  switch (spec.kind) {
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) throw invalidField(field, `must be an integer, got ${JSON.stringify(value)}`);
      if (value < spec.min! || value > spec.max!) throw invalidField(field, `must be within [${spec.min}, ${spec.max}], got ${value}`);
      return value;
    case 'string':
      if (typeof value !== 'string' || value.length === 0) throw invalidField(field, `must be a non-empty string, got ${JSON.stringify(value)}`);
      return value;
    case 'logLevel':
      if (!LOG_LEVELS.includes(value as LogLevel)) throw invalidField(field, `must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(value)}`);
      return value;
    case 'transports':
      return checkTransports(field, value);
    case 'object':
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidField(field, 'must be a JSON object');
      return value;
    case 'nfsExport':
      if (value === 'off' || value === 'memory' || (typeof value === 'string' && path.isAbsolute(value))) return value;
      throw invalidField(field, `must be off, memory or an absolute directory path, got ${JSON.stringify(value)}`);
  }
}

function checkTransports(field: string, value: unknown): TransportName[] {
  if (!Array.isArray(value) || value.length === 0) throw invalidField(field, 'must be a non-empty list of tcp, udp, rdma');
  for (const name of value) {
    if (!TRANSPORTS.includes(name)) throw invalidField(field, `has unknown transport ${JSON.stringify(name)} (tcp, udp, rdma)`);
  }
  return [...new Set(value as TransportName[])];
}

/** Merges options over the defaults and validates every field; throws ServerError naming the first bad one. */
export function fillServerOptions(options: ServerOptions = {}): FilledServerOptions {
  const filled: Record<string, unknown> = { ...kDefaultServerOptions };
  for (const spec of kOptionSpecs) {
    const value = options[spec.name];
    if (value !== undefined) filled[spec.name] = value;
    filled[spec.name] = checkValue(spec, filled[spec.name]);
  }
  const result = filled as unknown as FilledServerOptions;
  if (result.processes > 1 && result.transports.includes('udp') && result.udpPort === 0) {
    throw invalidField('udpPort', 'must be fixed (not 0) with more than one process: each process binds it with SO_REUSEPORT');
  }
  if (result.nfs !== 'off' && result.transports.includes('rdma') && result.nfsRdmaPort === result.rdmaPort) {
    throw invalidField('nfsRdmaPort', `must differ from rdmaPort (${result.rdmaPort}) while the service runs over rdma: one rdma_cm listener per port`);
  }
  if (result.nfs === 'memory' && result.nfsRdmaThreads > 0) {
    throw invalidField('nfsRdmaThreads', "must be 0 with nfs=memory: a memory export lives in one thread's heap; export a directory (nfs=/absolute/directory) to serve it from worker threads");
  }
  if (result.restartBackoffMaxMs < result.restartBackoffMs) {
    throw invalidField('restartBackoffMaxMs', `must be >= restartBackoffMs (${result.restartBackoffMs})`);
  }
  return result;
}
