export * from './protocol.js';
export { OncRpcError, OncRpcErrorCode, type OncRpcErrorDetails } from './errors.js';
export {
  authNone,
  encodeAuthSys,
  parseAuthSys,
  readOpaqueAuth,
  writeOpaqueAuth,
  type AuthSysParameters,
  type OpaqueAuth,
  type RpcCredential,
} from './auth.js';
export {
  readCallBody,
  readReplyBody,
  writeAcceptedHeader,
  writeAuthError,
  writeCallHeader,
  writeProgramMismatch,
  writeRpcMismatch,
  type CallHeader,
} from './message.js';
export {
  defineProcedure,
  type ProgramRegistrationOptions,
  type RpcCall,
  type RpcHandler,
  type RpcTransportContext,
  type VersionHandlers,
} from './service.js';
export {
  Dispatcher,
  type DispatchOptions,
  type DispatcherMetrics,
  type DispatcherOptions,
  type ReplyKind,
  type RpcReply,
} from './dispatcher.js';
export { RecordReader, recordMark, type RecordLimits, type RecordSink } from './tcp/record-reader.js';
export { tcpDefaults, type TcpClientOptions, type TcpCloseOptions, type TcpServerOptions, type TcpTransportOptions } from './tcp/options.js';
export { OncRpcTcpServer, type TcpCloseResult, type TcpConnectionListener, type TcpPeer, type TcpServerMetrics } from './tcp/server.js';
export type { TcpCallContext } from './tcp/server-connection.js';
export { OncRpcTcpClient, type CallOptions, type TcpClientMetrics } from './tcp/client.js';
export {
  RpcbindClient,
  parseUniversalAddress,
  registerTcpService,
  universalAddress,
  type RpcbindClientOptions,
  type RpcbindMapping,
} from './rpcbind/client.js';
