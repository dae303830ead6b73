/**
 * OncRpcTcpServer: serves a Dispatcher over TCP with record marking (RFC 5531 §11).
 *
 * Life: created by the application, which calls listen() and later close();
 * main thread. It owns its net.Server and every ServerConnection (bounded by
 * maxConnections); close() stops accepting, destroys the connections and
 * resolves once the listener is closed.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Dispatcher } from '../dispatcher.js';
import { fillTcpServerOptions, type FilledTcpServerOptions, type TcpServerOptions } from './options.js';
import { ServerConnection, type ServerConnectionMetrics, type TcpCallContext } from './server-connection.js';

export interface TcpServerMetrics extends ServerConnectionMetrics {
  connectionsAccepted: number;
  connectionsRefused: number;
}

export class OncRpcTcpServer {
  readonly options: FilledTcpServerOptions;
  readonly metrics: TcpServerMetrics = {
    connectionsAccepted: 0,
    connectionsRefused: 0,
    badRecords: 0,
    internalErrors: 0,
    truncatedStreams: 0,
    discardedReplies: 0,
  };
  private readonly server: Server;
  private readonly connections = new Set<ServerConnection>();

  constructor(
    private readonly dispatcher: Dispatcher<TcpCallContext>,
    options: TcpServerOptions = {},
  ) {
    this.options = fillTcpServerOptions(options);
    // Half-open: a client may send its calls and shut down its side; it still gets the replies.
    this.server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const connection of this.connections) connection.destroy();
    });
  }

  private accept(socket: Socket): void {
    if (this.connections.size >= this.options.maxConnections) {
      this.metrics.connectionsRefused++;
      socket.destroy();
      return;
    }
    this.metrics.connectionsAccepted++;
    const connection = new ServerConnection(socket, this.dispatcher, this.options, this.metrics, (closed) =>
      this.connections.delete(closed),
    );
    this.connections.add(connection);
  }
}
