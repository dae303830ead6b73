/**
 * OpenConnections: a server's live connections, and whoever waits for none
 * to be left (the server's close()).
 *
 * Life: one per server (main-thread or threaded), created with it; a
 * connection is added when accepted and deleted by its own teardown's close
 * callback; the set ends empty when close() has disconnected every one and
 * their teardowns ran. Main thread.
 */
export class OpenConnections<Connection extends { disconnect(): void }> extends Set<Connection> {
  /** One per pending close(); in practice one. */
  private readonly emptyWaiters: (() => void)[] = [];

  override delete(connection: Connection): boolean {
    const deleted = super.delete(connection);
    if (this.size === 0) for (const wake of this.emptyWaiters.splice(0)) wake();
    return deleted;
  }

  /** Resolves once no connection is left (at once when there is none). */
  whenEmpty(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.emptyWaiters.push(resolve));
  }

  /** Disconnects every connection and resolves once their teardowns removed them all. */
  async disconnectAll(): Promise<void> {
    const empty = this.whenEmpty();
    for (const connection of this) connection.disconnect();
    await empty;
  }
}
