/**
 * RxClient: calls to Rx servers (ours, OpenAFS, Linux AF_RXRPC).
 *
 * Life: `RxClient.open()` binds an ephemeral UDP socket; `connect()` makes a
 * ClientConnection (epoch fixed per client, cid allocated in steps of four);
 * `close()` fails running calls and closes the socket. A client's channels
 * run inline on the main thread (one ChannelThread), which owns them all: a
 * client's calls are the application's promises, so moving them to workers
 * would only add a hop. The per-channel discipline is the same as the
 * server's: one call at a time per channel, four channels per connection.
 */
import { isIP } from 'node:net';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import type { RxProcedureDescriptor } from '@roce-rpc/xdr';
import { CallStream } from './call/call-stream.js';
import type { Call } from './call/call.js';
import type { Channel } from './channel/channel.js';
import { connectionKey, type Connection } from './connection/connection-table.js';
import type { ConnectionView } from './connection/connection-view.js';
import { SerialTable } from './connection/serial-table.js';
import { Endpoint } from './endpoint/endpoint.js';
import { RxError } from './errors.js';
import { sumSnapshots, type CounterSnapshot } from './metrics.js';
import { checkInteger, checkTransport, fillCallOptions, type CallOptions } from './options.js';
import type { DatagramTransportKind } from './endpoint/datagram-transport.js';
import { CHANNELS_PER_CONNECTION, CHANNEL_MASK, CID_INCREMENT, RxErrorCode, SecurityIndex } from './protocol.js';
import { SplitCall, decodeValue, encodeRequest } from './interface.js';
import { ChannelThread } from './worker/channel-thread.js';

export interface RxClientOptions {
  /** Local address to bind: '0.0.0.0' for IPv4 peers, '::' for IPv6 (and mapped IPv4). */
  address?: string;
  maxConnections?: number;
  /** Calls that may wait for a free channel per connection before further calls are refused. */
  maxWaitingCalls?: number;
  poolBuffers?: number;
  /**
   * 'dgram' (default) or 'native' (the verbs core's batched socket; peers must
   * then be given as IP literals, since it resolves no names).
   */
  transport?: DatagramTransportKind;
  call?: CallOptions;
}

/** Whole-message calls answered BUSY are sent again this many times in all (each on the lowest free channel). */
const BUSY_RETRIES_MAX = 4;

/** Largest first cid we pick: keeps cids well clear of the sign bit. */
const CID_START_MAX = 0x3fff_fff0;

export class RxClient {
  private readonly endpoint: Endpoint;
  private readonly thread: ChannelThread;
  private readonly serials: SerialTable;
  readonly epoch: number;
  private readonly transport: DatagramTransportKind;
  private nextCid: number;
  private readonly maxWaitingCalls: number;
  private readonly connections = new Map<number, ClientConnection>();

  private constructor(options: RxClientOptions) {
    const maxConnections = checkInteger('maxConnections', options.maxConnections ?? 256, 1, 1 << 16);
    this.maxWaitingCalls = checkInteger('maxWaitingCalls', options.maxWaitingCalls ?? 1024, 0, 1 << 20);
    const callOptions = fillCallOptions(options.call);
    this.serials = new SerialTable(maxConnections);
    this.epoch = Math.floor(Date.now() / 1000) & 0x7fffffff;
    this.transport = checkTransport('transport', options.transport ?? 'dgram');
    this.nextCid = randomInt(1, CID_START_MAX / CID_INCREMENT) * CID_INCREMENT;
    this.thread = new ChannelThread({
      options: callOptions,
      serials: this.serials,
      poolBuffers: checkInteger('poolBuffers', options.poolBuffers ?? 1024, 0, 1 << 20),
      services: [],
      transmit: (info, packet) => {
        const connection = this.endpoint.connections.byConnectionId(info.id);
        // node:dgram reads the bytes on a later tick, after which a pooled buffer may be reused; the native transport copies at once.
        if (connection !== undefined) this.endpoint.sendTo(connection, this.transport === 'native' ? packet : packet.slice());
      },
      onCallEnded: (_call, view) => this.connections.get(view.info.id)?.channelFreed(),
    });
    this.endpoint = new Endpoint(
      {
        isServer: false,
        admit: () => undefined,
        opened: () => undefined,
        deliver: (connection, channel, datagram, header) => this.thread.deliver(connection.info.id, channel, datagram, header),
        closed: (connection, reason, abortCode) => {
          const error = abortCode === undefined ? new RxError('ERR_RX_CLOSED', reason) : new RxError('ERR_RX_CALL_ABORTED', reason, abortCode);
          this.connections.get(connection.info.id)?.closedBy(error);
          this.thread.close(connection.info.id, error);
        },
        debugState: async () => ({
          counters: this.stats(),
          callsExecuted: 0,
          idleThreads: 0,
          waitingCalls: 0,
          packetsAllocated: this.thread.pool.allocations,
          packetsFree: this.thread.pool.available,
          serverConnections: 0,
          clientConnections: this.connections.size,
        }),
      },
      { address: options.address ?? '0.0.0.0', port: 0, maxConnections, connectionIdleMs: 0, reusePort: false, exclusive: false, transport: this.transport },
      this.serials,
    );
  }

  static async open(options: RxClientOptions = {}): Promise<RxClient> {
    const client = new RxClient(options);
    await client.endpoint.listen();
    return client;
  }

  get localPort(): number {
    return this.endpoint.localPort;
  }

  /** A new connection (four channels) to `serviceId` at host:port. Null security only. */
  connect(host: string, port: number, serviceId: number): ClientConnection {
    if (this.transport === 'native' && isIP(host) === 0) throw new RxError('ERR_RX_OPTION', `a client on the native transport connects to IP literals, got ${host}`);
    const cid = this.nextCid >>> 0;
    this.nextCid = (this.nextCid + CID_INCREMENT) % CID_START_MAX || CID_INCREMENT;
    const connection = this.endpoint.connections.add(
      connectionKey('', 0, this.epoch, cid, false),
      { epoch: this.epoch, cid, serviceId, securityIndex: SecurityIndex.NULL, isClient: true, peerAddress: host, peerPort: port },
      performance.now(),
    );
    if (connection === undefined) throw new RxError('ERR_RX_NO_CHANNEL', `client already has ${this.endpoint.connections.maxConnections} connections`);
    const view = this.thread.open(connection.info, [0, 1, 2, 3]);
    const client = new ClientConnection(this, connection, view, this.maxWaitingCalls);
    this.connections.set(connection.info.id, client);
    return client;
  }

  /** @internal */
  forget(connection: ClientConnection): void {
    const reason = 'connection closed by the application';
    this.connections.delete(connection.connection.info.id);
    // Channels first, while the endpoint still routes their packets: they send the final ACKs they owe.
    this.thread.close(connection.connection.info.id, new RxError('ERR_RX_CLOSED', reason));
    this.endpoint.closeConnection(connection.connection, reason);
  }

  stats(): CounterSnapshot {
    return sumSnapshots([this.endpoint.counters, this.thread.counters]);
  }

  async close(): Promise<void> {
    for (const connection of [...this.connections.values()]) connection.close();
    await this.endpoint.close();
  }
}

export class ClientConnection {
  readonly connection: Connection;
  private readonly client: RxClient;
  private readonly view: ConnectionView;
  /** Calls waiting for a free channel, in order. Bounded by maxWaitingCalls. */
  private readonly waiting: { channel: number | undefined; resolve: (call: Call) => void; reject: (error: RxError) => void }[] = [];
  private readonly maxWaiting: number;
  private closed = false;
  /** Why the peer ended the connection: later calls fail with the same error. */
  private closedError: RxError | undefined;

  constructor(client: RxClient, connection: Connection, view: ConnectionView, maxWaiting: number) {
    this.client = client;
    this.connection = connection;
    this.view = view;
    this.maxWaiting = maxWaiting;
  }

  private freeChannel(wanted?: number): Channel | undefined {
    for (let index = 0; index < CHANNELS_PER_CONNECTION; index++) {
      const channel = this.view.channel(index)!;
      if (channel.call === undefined && (wanted === undefined || wanted === index)) return channel;
    }
    return undefined;
  }

  /** A free channel not in `avoid`, or undefined (then any channel will do). */
  private freeChannelAvoiding(avoid: ReadonlySet<number>): number | undefined {
    if (avoid.size === 0) return undefined;
    for (let index = 0; index < CHANNELS_PER_CONNECTION; index++) {
      if (!avoid.has(index) && this.view.channel(index)!.call === undefined) return index;
    }
    return undefined;
  }

  /** @internal a call ended: give free channels to the waiting calls, oldest first. */
  channelFreed(): void {
    for (let index = 0; index < this.waiting.length; index++) {
      const waiter = this.waiting[index]!;
      const channel = this.freeChannel(waiter.channel);
      if (channel === undefined) continue;
      this.waiting.splice(index, 1);
      index -= 1;
      waiter.resolve(channel.startClientCall());
    }
  }

  /** Starts a call on a free channel, synchronously when one is free so no other caller can take it first. */
  private startOnFreeChannel(wanted: number | undefined): Promise<Call> {
    if (this.closed) return Promise.reject(this.closedError ?? new RxError('ERR_RX_CLOSED', 'connection is closed'));
    const channel = this.freeChannel(wanted);
    // channelFreed hands a freed channel to a fitting waiter at once, so a free channel has none.
    if (channel !== undefined) return Promise.resolve(channel.startClientCall());
    if (this.waiting.length >= this.maxWaiting) {
      return Promise.reject(new RxError('ERR_RX_NO_CHANNEL', `${this.maxWaiting} calls already wait for a channel`));
    }
    return new Promise((resolve, reject) => this.waiting.push({ channel: wanted, resolve, reject }));
  }

  /**
   * Starts a split (streamed) call: write the request, end() it, then read
   * the reply. `channel` pins the call to one channel (scripted tests);
   * otherwise the lowest free channel is used.
   */
  async startCall(options: { channel?: number } = {}): Promise<CallStream> {
    if (options.channel !== undefined) checkInteger('channel', options.channel, 0, CHANNELS_PER_CONNECTION - 1);
    return new CallStream(await this.startOnFreeChannel(options.channel));
  }

  /** A whole-message call: request bytes in, reply bytes out (max `maxReplyBytes`). */
  async call(request: Uint8Array, options: { maxReplyBytes?: number; channel?: number } = {}): Promise<Uint8Array> {
    // BUSY means the server never started the call: it is safe to send it again on another channel.
    const busyChannels = new Set<number>();
    for (let attempt = 1; ; attempt++) {
      const stream = await this.startCall({ channel: options.channel ?? this.freeChannelAvoiding(busyChannels) });
      try {
        await stream.end(request);
        const reply = await stream.readAll(options.maxReplyBytes);
        await stream.done;
        return reply;
      } catch (error) {
        const busy = error instanceof RxError && error.code === 'ERR_RX_BUSY';
        if (!busy || attempt >= BUSY_RETRIES_MAX || options.channel !== undefined) throw error;
        busyChannels.add(stream.call.link.headerTemplate().cid & CHANNEL_MASK);
      }
    }
  }

  /** An rxgen procedure call: opcode + XDR arguments in, XDR results out. */
  async invoke<Args, Result>(procedure: RxProcedureDescriptor<Args, Result>, args: Args): Promise<Result> {
    assert.ok(!procedure.split, `${procedure.qualifiedName} is a split procedure: use startSplit`);
    const reply = await this.call(encodeRequest(procedure, args));
    return decodeValue(procedure.result, reply, RxErrorCode.RXGEN_CC_UNMARSHAL);
  }

  /** Starts an rxgen split procedure: the arguments are written, the stream is the application's. */
  async startSplit<Args, Result>(procedure: RxProcedureDescriptor<Args, Result>, args: Args, options: { channel?: number } = {}): Promise<SplitCall<Result>> {
    const stream = await this.startCall(options);
    await stream.write(encodeRequest(procedure, args));
    return new SplitCall(stream, procedure as RxProcedureDescriptor<unknown, Result>);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.waiting.splice(0)) waiter.reject(new RxError('ERR_RX_CLOSED', 'connection closed'));
    this.client.forget(this);
  }

  /** @internal the peer (or the endpoint) ended the connection: refuse further calls. */
  closedBy(error: RxError): void {
    this.closed = true;
    this.closedError = error;
    for (const waiter of this.waiting.splice(0)) waiter.reject(error);
  }
}

