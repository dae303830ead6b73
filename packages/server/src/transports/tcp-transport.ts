/**
 * ONC RPC over TCP for one server process.
 *
 * Every process listens on the same port through node:cluster: the
 * supervisor (primary) owns the listening socket, accepts, and hands each
 * accepted connection's handle to one process, round-robin. The connection
 * then lives in that process until it closes; if the process dies, its
 * connections die with it (clients see the close and reconnect).
 */
import { OncRpcTcpServer } from '@roce-rpc/oncrpc';
import type { Logger } from 'pino';
import type { FilledServerOptions } from '../config/options.js';
import type { MeteredDispatcher } from './metered-dispatcher.js';

/** The server object; listen() takes the port (a warm spare makes it at boot and listens when activated). */
export function createTcpTransport(options: FilledServerOptions, dispatcher: MeteredDispatcher): OncRpcTcpServer {
  return new OncRpcTcpServer(dispatcher, {
    host: options.host,
    port: options.tcpPort,
    maxConnections: options.maxConnections,
    maxInFlightCallsPerConnection: options.maxInFlightCallsPerConnection,
  });
}

/** A child logger per connection (transport, peer), logging its open and close at debug. */
export function watchConnections(server: OncRpcTcpServer, log: Logger): void {
  server.onConnection((peer) => {
    const connectionLog = log.child({ transport: 'tcp', peer: `${peer.remoteAddress}:${peer.remotePort}` });
    connectionLog.debug('connection opened');
    return () => connectionLog.debug('connection closed');
  });
}
