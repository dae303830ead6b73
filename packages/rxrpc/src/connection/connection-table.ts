/**
 * The endpoint's connections, found by hash of {peer address, port, epoch,
 * cid & ~3, direction} — or {epoch, cid, direction} when the epoch asks not
 * to match on address.
 *
 * Life: owned by the Endpoint on the main thread; the only thread that
 * creates, finds and removes connections. Bounded by `maxConnections`, which
 * is also the number of serial slots; idle connections are reaped.
 */
import assert from 'node:assert/strict';
import { EPOCH_ONLY_MATCH_BIT } from '../protocol.js';
import type { ConnectionInfo } from './connection-info.js';
import type { SerialTable } from './serial-table.js';

export interface Connection {
  readonly info: ConnectionInfo;
  readonly key: string;
  lastActivityMs: number;
}

/**
 * Packets to our client connections are matched on {epoch, cid} alone: we
 * allocated both, and a peer's address may be reported differently from how
 * the application named it (a host name, an IPv4-mapped IPv6 address).
 */
export function connectionKey(address: string, port: number, epoch: number, cid: number, fromClient: boolean): string {
  if (!fromClient) return `${epoch}/${cid}/out`;
  if ((epoch & EPOCH_ONLY_MATCH_BIT) !== 0) return `${epoch}/${cid}/in`;
  return `${address}/${port}/${epoch}/${cid}/in`;
}

/** The same test as equal connectionKey()s, on the fields themselves. */
function matchesConnection(info: ConnectionInfo, address: string, port: number, epoch: number, cid: number, fromClient: boolean): boolean {
  if (info.epoch !== epoch || info.cid !== cid || info.isClient === fromClient) return false;
  if (!fromClient || (epoch & EPOCH_ONLY_MATCH_BIT) !== 0) return true;
  return info.peerPort === port && info.peerAddress === address;
}

/**
 * Connections by connectionKey, remembering the one the last lookup found:
 * consecutive packets mostly belong to one connection, and matching its
 * fields directly skips building the string key for each of them. Used by
 * the routing thread's table and by each channel worker's socket for the
 * connections announced to it.
 */
export class ConnectionIndex<Entry> {
  private readonly byKey = new Map<string, Entry>();
  private lastFound: Entry | undefined;
  private readonly infoOf: (entry: Entry) => ConnectionInfo;

  constructor(infoOf: (entry: Entry) => ConnectionInfo) {
    this.infoOf = infoOf;
  }

  get size(): number {
    return this.byKey.size;
  }

  get(key: string): Entry | undefined {
    return this.byKey.get(key);
  }

  /** The connection a packet belongs to (see connectionKey for what is matched). */
  lookup(address: string, port: number, epoch: number, cid: number, fromClient: boolean): Entry | undefined {
    const last = this.lastFound;
    if (last !== undefined && matchesConnection(this.infoOf(last), address, port, epoch, cid, fromClient)) return last;
    const found = this.byKey.get(connectionKey(address, port, epoch, cid, fromClient));
    if (found !== undefined) this.lastFound = found;
    return found;
  }

  set(key: string, entry: Entry): void {
    this.byKey.set(key, entry);
  }

  delete(key: string): void {
    if (this.lastFound !== undefined && this.lastFound === this.byKey.get(key)) this.lastFound = undefined;
    this.byKey.delete(key);
  }

  values(): IterableIterator<Entry> {
    return this.byKey.values();
  }
}

export class ConnectionTable {
  private readonly byKey = new ConnectionIndex<Connection>((connection) => connection.info);
  private readonly byId = new Map<number, Connection>();
  /**
   * Serial slots not in use, one per possible connection, reused oldest
   * freed first (a ring): a channel worker that has not yet heard of a
   * connection's close may still touch its slot's shared words for a moment
   * (serial counter, channel-records.ts), which must not be a new
   * connection's by then.
   */
  private readonly freeSlots: Int32Array;
  private freeHead = 0;
  private freeCount = 0;
  private nextId = 1;
  readonly maxConnections: number;
  private readonly serials: SerialTable;

  constructor(maxConnections: number, serials: SerialTable) {
    assert.ok(serials.counters.length >= maxConnections, 'one serial slot per connection');
    this.maxConnections = maxConnections;
    this.serials = serials;
    this.freeSlots = new Int32Array(maxConnections);
    for (let slot = 0; slot < maxConnections; slot++) this.releaseSlot(slot);
  }

  get size(): number {
    return this.byKey.size;
  }

  find(key: string): Connection | undefined {
    return this.byKey.get(key);
  }

  /** The connection a packet belongs to (see connectionKey for what is matched). */
  lookup(address: string, port: number, epoch: number, cid: number, fromClient: boolean): Connection | undefined {
    return this.byKey.lookup(address, port, epoch, cid, fromClient);
  }

  byConnectionId(id: number): Connection | undefined {
    return this.byId.get(id);
  }

  /** Returns undefined when the table is full. */
  add(key: string, info: Omit<ConnectionInfo, 'id' | 'serialSlot'>, nowMs: number): Connection | undefined {
    assert.ok(this.byKey.get(key) === undefined, 'a connection key is added once');
    if (this.freeCount === 0) return undefined;
    const serialSlot = this.freeSlots[this.freeHead]!;
    this.freeHead = (this.freeHead + 1) % this.freeSlots.length;
    this.freeCount -= 1;
    this.serials.reset(serialSlot);
    const connection: Connection = { info: { ...info, id: this.nextId, serialSlot }, key, lastActivityMs: nowMs };
    this.nextId = this.nextId >= 0xfffffffe ? 1 : this.nextId + 1;
    this.byKey.set(key, connection);
    this.byId.set(connection.info.id, connection);
    return connection;
  }

  remove(connection: Connection): void {
    if (this.byKey.get(connection.key) !== connection) return;
    this.byKey.delete(connection.key);
    this.byId.delete(connection.info.id);
    this.releaseSlot(connection.info.serialSlot);
  }

  private releaseSlot(slot: number): void {
    assert.ok(this.freeCount < this.freeSlots.length, 'a slot is freed once');
    this.freeSlots[(this.freeHead + this.freeCount) % this.freeSlots.length] = slot;
    this.freeCount += 1;
  }

  /** Connections silent since before `cutoffMs`. */
  idleSince(cutoffMs: number): Connection[] {
    return [...this.byKey.values()].filter((connection) => connection.lastActivityMs < cutoffMs);
  }

  all(): IterableIterator<Connection> {
    return this.byKey.values();
  }
}
