/**
 * OncRpcTcpServer: serves a Dispatcher over TCP with record marking (RFC 5531 §11).
 *
 * Life: created by the application, which calls listen() and later close();
 * main thread. It owns its net.Server and every ServerConnection (bounded by
 * maxConnections). stopAccepting() closes the listener and keeps the
 * connections; close() stops accepting, lets the connections answer their
 * calls in flight for up to `drainMs` (reading no new ones), destroys what is
 * left and resolves once the listener and every connection are closed.
 */
import assert from 'node:assert';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Dispatcher } from '../dispatcher.js';
import { fillTcpCloseOptions, fillTcpServerOptions, type FilledTcpServerOptions, type TcpCloseOptions, type TcpServerOptions } from './options.js';
import { ServerConnection, type ServerConnectionMetrics, type TcpCallContext } from './server-connection.js';

export interface TcpServerMetrics extends ServerConnectionMetrics {
  connectionsAccepted: number;
  connectionsRefused: number;
}

/** The peer of an accepted connection, as the connection hook sees it. */
export interface TcpPeer {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
}

/** Called for each accepted connection; may return a function called once when it closes. */
export type TcpConnectionListener = (peer: TcpPeer) => (() => void) | void;

export interface TcpCloseResult {
  /** Calls still in flight when the drain ended (their replies are lost); 0 without a drain. */
  unfinishedCalls: number;
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
  private connectionListener: TcpConnectionListener | undefined;
  /** Settles when the listener has closed (which net.Server reports only once every connection has). */
  private listenerClosed: Promise<void> | undefined;
  /** Wakes a draining close() when the last connection has gone. */
  private lastConnectionGone: (() => void) | undefined;

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

  /**
   * The hook for per-connection work (logging, accounting): called on accept,
   * not for connections refused at maxConnections. One listener per server.
   */
  onConnection(listener: TcpConnectionListener): void {
    assert(this.connectionListener === undefined, 'one connection listener per server');
    this.connectionListener = listener;
  }

  /** Takes no new connections; the open ones go on being served. Idempotent. */
  stopAccepting(): void {
    this.listenerClosed ??= new Promise((resolve) => this.server.close(() => resolve()));
  }

  async close(options: TcpCloseOptions = {}): Promise<TcpCloseResult> {
    const { drainMs } = fillTcpCloseOptions(options);
    this.stopAccepting();
    if (drainMs > 0 && this.connections.size > 0) {
      for (const connection of this.connections) connection.finishAndClose();
      await this.connectionsGoneWithin(drainMs);
    }
    let unfinishedCalls = 0;
    for (const connection of this.connections) {
      if (drainMs > 0) unfinishedCalls += connection.callsInFlight;
      connection.destroy();
    }
    await this.listenerClosed;
    return { unfinishedCalls };
  }

  private connectionsGoneWithin(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.lastConnectionGone?.(), timeoutMs);
      this.lastConnectionGone = () => {
        clearTimeout(timer);
        this.lastConnectionGone = undefined;
        resolve();
      };
    });
  }

  private accept(socket: Socket): void {
    if (this.connections.size >= this.options.maxConnections) {
      this.metrics.connectionsRefused++;
      socket.destroy();
      return;
    }
    this.metrics.connectionsAccepted++;
    const closedHook = this.connectionListener?.({ remoteAddress: socket.remoteAddress, remotePort: socket.remotePort });
    const connection = new ServerConnection(socket, this.dispatcher, this.options, this.metrics, (closed) => {
      this.connections.delete(closed);
      if (closedHook !== undefined) closedHook();
      if (this.connections.size === 0) this.lastConnectionGone?.();
    });
    this.connections.add(connection);
  }
}
