/**
 * TickCork: corks a socket until the next tick, so that everything written to
 * it in one tick (the calls a client issues, the replies a server connection
 * produces from one received chunk or one microtask run) leaves in one writev
 * instead of one small segment per write.
 *
 * Life: created by the OncRpcTcpClient or ServerConnection that owns the
 * socket, owned by it, main thread only; it holds nothing to free (a pending
 * uncork on a destroyed socket is harmless).
 */
import type { Socket } from 'node:net';

export class TickCork {
  private corked = false;

  constructor(private readonly socket: Socket) {
    this.uncork = this.uncork.bind(this);
  }

  /** Corks the socket unless already corked; it uncorks on the next tick. */
  corkUntilNextTick(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(this.uncork);
  }

  private uncork(): void {
    this.corked = false;
    this.socket.uncork();
  }
}
