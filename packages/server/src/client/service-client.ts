/**
 * ServiceClient: calls a service definition's procedures by name over ONC
 * RPC/TCP or RxRPC/UDP, using the protocol packages' clients.
 *
 * Life: created by connect(), owned by the application, closed by close().
 * Main thread (or any one thread).
 */
import { OncRpcTcpClient, defineProcedure } from '@roce-rpc/oncrpc';
import { RxClient, type ClientConnection } from '@roce-rpc/rxrpc';
import type { RxProcedureDescriptor } from '@roce-rpc/xdr';
import type { ServiceDefinition } from '../service/definition.js';

export interface ServiceClientOptions {
  transport: 'tcp' | 'udp';
  host?: string;
  port: number;
  /** Longest a call may take before it fails (TCP: ERR_ONCRPC_TIMEOUT; UDP: the RxRPC hard deadline). */
  timeoutMs?: number;
}

type Procedures<S extends ServiceDefinition> = S['procedures'];
type ArgumentOf<S extends ServiceDefinition, N extends keyof Procedures<S>> = Parameters<Procedures<S>[N]['handler']>[0];
type ResultOf<S extends ServiceDefinition, N extends keyof Procedures<S>> = Awaited<ReturnType<Procedures<S>[N]['handler']>>;

export class ServiceClient<S extends ServiceDefinition> {
  private constructor(
    private readonly service: S,
    private readonly options: ServiceClientOptions,
    private readonly tcp: OncRpcTcpClient | undefined,
    private readonly rx: { client: RxClient; connection: ClientConnection } | undefined,
  ) {}

  static async connect<S extends ServiceDefinition>(service: S, options: ServiceClientOptions): Promise<ServiceClient<S>> {
    const host = options.host ?? '127.0.0.1';
    if (options.transport === 'tcp') {
      return new ServiceClient(service, options, await OncRpcTcpClient.connect({ host, port: options.port }), undefined);
    }
    const client = await RxClient.open(options.timeoutMs === undefined ? {} : { call: { hardDeadMs: options.timeoutMs } });
    return new ServiceClient(service, options, undefined, { client, connection: client.connect(host, options.port, service.rxServiceId) });
  }

  call<N extends keyof Procedures<S> & string>(name: N, argument: ArgumentOf<S, N>): Promise<ResultOf<S, N>> {
    const procedure = this.service.procedures[name];
    if (procedure === undefined) throw new TypeError(`service ${this.service.name} has no procedure ${name}`);
    if (this.tcp !== undefined) {
      const descriptor = defineProcedure(name, procedure.number, procedure.argument, procedure.result);
      const options = this.options.timeoutMs === undefined ? {} : { timeoutMs: this.options.timeoutMs };
      return this.tcp.call(this.service.program, this.service.version, descriptor, argument, options) as Promise<ResultOf<S, N>>;
    }
    const descriptor: RxProcedureDescriptor = {
      name,
      qualifiedName: `${this.service.name}_${name}`,
      opcode: procedure.number,
      argument: procedure.argument,
      result: procedure.result,
      ddp: { argument: false, result: false },
      split: false,
      parameters: [],
    };
    return this.rx!.connection.invoke(descriptor, argument) as Promise<ResultOf<S, N>>;
  }

  async close(): Promise<void> {
    if (this.tcp !== undefined) await this.tcp.close();
    if (this.rx !== undefined) {
      this.rx.connection.close();
      await this.rx.client.close();
    }
  }
}
