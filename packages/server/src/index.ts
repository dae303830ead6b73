export { ServerError, ServerErrorCode } from './errors.js';
export {
  fillServerOptions,
  kDefaultServerOptions,
  kOptionSpecs,
  TRANSPORTS,
  type FilledServerOptions,
  type ServerOptions,
  type TransportName,
} from './config/options.js';
export { helpText, resolveCommandLine, readConfigFile, optionsFromEnvironment } from './config/sources.js';
export {
  defineService,
  loadService,
  type CallContext,
  type CallTransport,
  type ProcedureDefinition,
  type ServiceDefinition,
  type ServiceInitContext,
} from './service/definition.js';
export { Supervisor, type Listening } from './process/supervisor.js';
export { ServerProcess } from './process/server-process.js';
export { RX_BUSY_ABORT_CODE } from './transports/rx-service-module-constants.js';
export { ServiceClient, type ServiceClientOptions } from './client/service-client.js';
