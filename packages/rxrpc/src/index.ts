export * from './protocol.js';
export { RxError, type RxErrorCodeName } from './errors.js';
export {
  decodeHeader,
  encodeHeader,
  encodePacket,
  decodeAck,
  encodeAckBody,
  decodeAbortCode,
  encodeAbortBody,
  splitData,
  encodeJumbo,
  type PacketHeader,
  type AckBody,
  type AckTrailer,
  type DataPacket,
} from './wire/codec.js';
export { fillCallOptions, kDefaultCallOptions, type CallOptions, type FilledCallOptions } from './options.js';
export { type CounterSnapshot, emptySnapshot, sumSnapshots } from './metrics.js';
export { CallStream } from './call/call-stream.js';
export { rxgenService, type RxService, type ServerCallInfo, type Procedure, type SimpleProcedure, type SplitProcedure } from './service.js';
export { RxServer, type RxCloseOptions, type RxConnectionInfo, type RxConnectionListener, type RxCloseResult, type RxServerOptions, type RxServerStats } from './server.js';
export { RxClient, ClientConnection, type RxClientOptions } from './client.js';
export {
  SplitCall,
  serviceFromPackage,
  encodeRequest,
  type PackageImplementation,
  type ProcedureImplementation,
  type SplitProcedureImplementation,
} from './interface.js';
export { VERSION_STRING } from './endpoint/debug-replies.js';
