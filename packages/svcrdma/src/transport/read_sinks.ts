/**
 * ReadSinks: the registered buffers a transport pulls calls' Read chunks into
 * (NFS WRITE data, long calls), kept from one RPC to the next — Linux's nfsd
 * reads into pages it already holds, rather than allocating, zeroing,
 * registering and deregistering a 1 MiB buffer for every WRITE, which the lab
 * measured as the WRITE path's largest cost after the Read itself.
 *
 * Life: created empty with its transport; a sink is taken for one chunk of one
 * RPC (take) and comes back when that RPC is released (giveBack); the data the
 * dispatcher saw in it is overwritten by a later call after that, so a handler
 * must copy what it keeps (the NFS stores copy WRITE data). Sinks beyond
 * READ_SINKS_KEPT_MAX, chunks larger than READ_SINK_BYTES and everything given
 * back after destroy() are deregistered at once. destroy() at teardown
 * deregisters the kept ones. Thread: the one serving the transport.
 */
import { MAX_SPECIAL_CHUNK_BYTES } from '../protocol.js';
import type { Registration, SendResources } from './send_context.js';

/** Every chunk the header decoder accepts fits: a whole long call (1 MiB + two pages). */
export const READ_SINK_BYTES = MAX_SPECIAL_CHUNK_BYTES;
/**
 * Sinks kept per transport: one per RPC the default service pool serves at once
 * (4 workers); 4 MiB + 32 KiB of registered memory per connection at most.
 */
export const READ_SINKS_KEPT_MAX = 4;

export class ReadSinks {
  private readonly kept: Registration[] = [];
  private destroyed = false;

  constructor(private readonly resources: Pick<SendResources, 'register'>) {}

  /** Registered memory for a chunk of `length` bytes; its first `length` bytes are the chunk's. */
  take(length: number): Registration {
    // After teardown a call still being assembled gets a one-off buffer: its Reads fail anyway.
    if (this.destroyed || length > READ_SINK_BYTES) return this.resources.register(new Uint8Array(length));
    return this.kept.pop() ?? this.resources.register(new Uint8Array(READ_SINK_BYTES));
  }

  /** The RPC that pulled into `sink` was released: keep it for the next call, or deregister it. */
  giveBack(sink: Registration): void {
    if (this.destroyed || sink.bytes.length !== READ_SINK_BYTES || this.kept.length >= READ_SINKS_KEPT_MAX) {
      sink.close();
      return;
    }
    this.kept.push(sink);
  }

  /** Teardown: every kept sink is deregistered; those still held are when given back. */
  destroy(): void {
    this.destroyed = true;
    for (const sink of this.kept.splice(0)) sink.close();
  }

  /** Sinks kept registered for the next calls. */
  get keptCount(): number {
    return this.kept.length;
  }
}
