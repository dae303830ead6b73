/**
 * The module every RxRPC channel worker thread imports (RxServerOptions.
 * serviceModule): it turns the service definition into an RxService whose
 * opcodes are the procedure numbers, and runs the handlers right here, on
 * the channel worker thread that owns the call's channel (the RxRPC
 * counterpart of the procedure worker threads).
 *
 * Its configuration travels in the module URL's `config` query parameter
 * (base64url JSON), because the rxrpc package imports the module without
 * arguments.
 */
import { performance } from 'node:perf_hooks';
import { RxError, RxErrorCode, rxgenService, type Procedure, type RxService, type ServerCallInfo } from '@roce-rpc/rxrpc';
import { XdrReader, XdrWriter, decodeWhole, isXdrError } from '@roce-rpc/xdr';
import { callContext, createLogger } from '../log/logger.js';
import { CallRecordBatcher } from '../metrics/call-events.js';
import { loadService, type ProcedureDefinition } from '../service/definition.js';
import type { RxModuleConfig } from './udp-transport.js';
import { RX_BUSY_ABORT_CODE } from './rx-service-module-constants.js';

/** A handler that threw: the call is aborted with this (rx's "user abort"). */
const HANDLER_FAILED_ABORT_CODE = RxErrorCode.USER_ABORT;

const config = JSON.parse(Buffer.from(new URL(import.meta.url).searchParams.get('config') ?? '', 'base64url').toString()) as RxModuleConfig;
const service = await loadService(config.service);
await service.init?.({ options: config.serviceOptions, instanceId: config.instanceId });
const log = createLogger(config.logLevel, { role: 'server', thread: 'rxrpc-channel', service: service.name });
const records = new CallRecordBatcher();
let inFlight = 0;

function encodeResult(procedure: ProcedureDefinition<unknown, unknown>, result: unknown): Uint8Array {
  const writer = new XdrWriter();
  procedure.result.encode(writer, result);
  // One buffer without a copy unless bulk data was referenced.
  return writer.finish().toBuffer();
}

function serve(name: string, procedure: ProcedureDefinition<unknown, unknown>): Procedure {
  return async (bytes: Uint8Array, info: ServerCallInfo) => {
    const started = performance.now();
    const finish = (status: string): void => {
      const record = { transport: 'udp' as const, procedure: name, status, seconds: (performance.now() - started) / 1000 };
      records.add(record);
      if (log.isLevelEnabled('trace')) log.trace({ ...record, callId: info.callNumber, peer: `${info.peerAddress}:${info.peerPort}` }, 'call answered');
    };
    if (inFlight >= config.maxInFlightCalls) {
      finish('busy');
      throw new RxError('ERR_RX_BUSY', `${config.maxInFlightCalls} calls already running on this thread`, RX_BUSY_ABORT_CODE);
    }
    let argument: unknown;
    try {
      argument = decodeWhole(procedure.argument, new XdrReader(bytes));
    } catch (error) {
      finish('garbage_args');
      throw new RxError('ERR_RX_BAD_PACKET', `${name}: ${(error as Error).message}`, RxErrorCode.RXGEN_SS_UNMARSHAL);
    }
    inFlight++;
    try {
      const context = callContext(log, 'udp', info.callNumber, info.peerAddress, info.peerPort);
      const reply = encodeResult(procedure, await procedure.handler(argument, context));
      finish('success');
      return reply;
    } catch (error) {
      finish('system_err');
      log.warn({ err: error, procedure: name, peer: `${info.peerAddress}:${info.peerPort}` }, 'handler failed; call aborted');
      if (isXdrError(error)) throw new RxError('ERR_RX_CALL_ABORTED', `${name}: result does not encode`, HANDLER_FAILED_ABORT_CODE);
      throw new RxError('ERR_RX_CALL_ABORTED', `${name} failed`, HANDLER_FAILED_ABORT_CODE);
    } finally {
      inFlight--;
    }
  };
}

const procedures = new Map<number, Procedure>();
for (const [name, procedure] of Object.entries(service.procedures)) procedures.set(procedure.number, serve(name, procedure));

export const services: RxService[] = [rxgenService(service.rxServiceId, service.name, procedures)];
