/**
 * RxRPC over UDP for one server process.
 *
 * Every process binds the same UDP port with SO_REUSEPORT (Node ≥ 22.12:
 * dgram `reusePort`) and `exclusive: true` (so node:cluster does not share
 * one socket among the processes). Linux then picks the socket for each
 * datagram by a hash of its 4-tuple: all packets of one peer address/port
 * reach the same process, which holds that peer's RxRPC connections for
 * their whole life. When a process dies its socket leaves the group and its
 * peers hash onto the survivors, which do not know their connections (those
 * calls fail and the clients reconnect).
 */
import { RxServer } from '@roce-rpc/rxrpc';
import type { Logger } from 'pino';
import type { FilledServerOptions, LogLevel } from '../config/options.js';

export interface RxModuleConfig {
  service: string;
  serviceOptions: Record<string, unknown>;
  instanceId: string;
  logLevel: LogLevel;
  /** Calls running on one channel worker thread at once; more are aborted busy. */
  maxInFlightCalls: number;
}

export function rxModuleUrl(config: RxModuleConfig): string {
  const url = new URL('./rx-service-module.js', import.meta.url);
  url.searchParams.set('config', Buffer.from(JSON.stringify(config)).toString('base64url'));
  return url.href;
}

/**
 * Starts the channel worker threads (each imports the service) without taking
 * the port: a warm spare calls this at boot and `bind()`s when it is activated,
 * which then costs a socket bind, not a worker start-up.
 */
export function prepareUdpTransport(options: FilledServerOptions, module: Omit<RxModuleConfig, 'maxInFlightCalls'>): Promise<RxServer> {
  const serviceModule = rxModuleUrl({ ...module, maxInFlightCalls: Math.max(1, Math.floor(options.maxInFlightCalls / Math.max(1, options.rxThreads))) });
  return RxServer.prepare({
    serviceModule,
    address: options.host,
    port: options.udpPort,
    workers: options.rxThreads,
    maxConnections: options.maxConnections,
    reusePort: true,
    exclusive: true,
  });
}

/** Logs each RxRPC connection's creation and reaping at debug, as watchConnections does for TCP. */
export function watchRxConnections(server: RxServer, log: Logger): void {
  server.onConnection((info) => {
    const connectionLog = log.child({ transport: 'udp', peer: `${info.peerAddress}:${info.peerPort}`, epoch: info.epoch, cid: info.cid });
    connectionLog.debug('connection opened');
    return () => connectionLog.debug('connection closed');
  });
}
