/**
 * TCP transport options: Options (all optional) -> filled options, defaults in
 * one place, validated with messages that name the field.
 */

export interface TcpTransportOptions {
  /** Largest record (call or reply) accepted; larger closes the connection. */
  maxRecordBytes?: number;
  /** Most fragments one record may have. */
  maxFragmentsPerRecord?: number;
}

export interface TcpServerOptions extends TcpTransportOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Calls of one connection being served at once; reading pauses at the bound. */
  maxInFlightCallsPerConnection?: number;
  /** Connections served at once; more are refused (closed on accept). */
  maxConnections?: number;
}

export interface TcpClientOptions extends TcpTransportOptions {
  host?: string;
  port: number;
  /** Calls outstanding at once; more are refused with ERR_ONCRPC_TOO_MANY_CALLS. */
  maxInFlightCalls?: number;
  /** Default per-call timeout. */
  timeoutMs?: number;
  /** Local port to bind (e.g. a privileged port, which rpcbind asks of SET callers). */
  localPort?: number;
}

export interface TcpCloseOptions {
  /**
   * Time the open connections get to answer their calls in flight (reading no new
   * ones) before they are destroyed; 0 destroys them at once.
   */
  drainMs?: number;
}

export type FilledTcpServerOptions = Required<TcpServerOptions>;
export type FilledTcpClientOptions = Required<Omit<TcpClientOptions, 'localPort'>> & { localPort: number | undefined };

export const tcpDefaults = {
  host: '127.0.0.1',
  port: 0,
  // An NFS READ/WRITE of 1 MiB plus headers fits with room; bounds one connection's buffering.
  maxRecordBytes: 4 * 1024 * 1024 + 64 * 1024,
  // Real senders use one fragment (Linux caps at a few for 1 MiB); 1024 is generous.
  maxFragmentsPerRecord: 1024,
  // Matches a typical client slot table (Linux sunrpc: 65536 max, 128 typical): keeps one
  // connection from monopolising the server.
  maxInFlightCallsPerConnection: 128,
  maxConnections: 1024,
  maxInFlightCalls: 128,
  timeoutMs: 30_000,
  drainMs: 0,
} as const;

/** An hour: a drain longer than that is a mistake in the caller's units. */
const drainMsMax = 3_600_000;

function positiveInteger(value: unknown, field: string, allowZero = false): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new TypeError(`${field} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${String(value)}`);
  }
  return value;
}

function fillTransport(options: TcpTransportOptions): Required<TcpTransportOptions> {
  const maxRecordBytes = positiveInteger(options.maxRecordBytes ?? tcpDefaults.maxRecordBytes, 'maxRecordBytes');
  if (maxRecordBytes > 0x7fff_ffff) throw new TypeError('maxRecordBytes must fit a fragment length (2^31 - 1)');
  return {
    maxRecordBytes,
    maxFragmentsPerRecord: positiveInteger(options.maxFragmentsPerRecord ?? tcpDefaults.maxFragmentsPerRecord, 'maxFragmentsPerRecord'),
  };
}

export function fillTcpServerOptions(options: TcpServerOptions): FilledTcpServerOptions {
  return {
    ...fillTransport(options),
    host: options.host ?? tcpDefaults.host,
    port: positiveInteger(options.port ?? tcpDefaults.port, 'port', true),
    maxInFlightCallsPerConnection: positiveInteger(
      options.maxInFlightCallsPerConnection ?? tcpDefaults.maxInFlightCallsPerConnection,
      'maxInFlightCallsPerConnection',
    ),
    maxConnections: positiveInteger(options.maxConnections ?? tcpDefaults.maxConnections, 'maxConnections'),
  };
}

export function fillTcpClientOptions(options: TcpClientOptions): FilledTcpClientOptions {
  return {
    ...fillTransport(options),
    host: options.host ?? tcpDefaults.host,
    port: positiveInteger(options.port, 'port'),
    maxInFlightCalls: positiveInteger(options.maxInFlightCalls ?? tcpDefaults.maxInFlightCalls, 'maxInFlightCalls'),
    timeoutMs: positiveInteger(options.timeoutMs ?? tcpDefaults.timeoutMs, 'timeoutMs'),
    localPort: options.localPort === undefined ? undefined : positiveInteger(options.localPort, 'localPort'),
  };
}

export function fillTcpCloseOptions(options: TcpCloseOptions): Required<TcpCloseOptions> {
  const drainMs = positiveInteger(options.drainMs ?? tcpDefaults.drainMs, 'drainMs', true);
  if (drainMs > drainMsMax) throw new TypeError(`drainMs must be at most ${drainMsMax}, got ${drainMs}`);
  return { drainMs };
}
