export * from './protocol.js';
export * from './errors.js';
export * from './options.js';
export * from './header/chunks.js';
export { decodeCallHeader, defaultHeaderLimits, type HeaderLimits } from './header/decode.js';
export { decodeReplyHeader, type ReplyTransportHeader } from './header/decode_reply.js';
export {
  encodeCallHeader,
  encodeReplyHeader,
  encodeErrorHeader,
  replyHeaderBytes,
  type ReplyHeaderFields,
} from './header/encode.js';
export {
  encodeConnectPrivateData,
  decodeConnectPrivateData,
  defaultConnectPrivateData,
  type ConnectPrivateData,
} from './header/private_data.js';
export { grantCredits } from './reply/credits.js';
export { scatterOntoChunk, unusedChunk, type RdmaWrite, type ScatterResult } from './reply/scatter.js';
export { planReply, ReplyRejectReason, type ReplyBody, type ReplyPlan, type ReplyPlanInput } from './reply/plan.js';
export { DrainPoint, DRAIN_BATCH_BUCKETS, SendContext, SendContextPool, type SendContextMetrics } from './transport/send_context.js';
export { ServicePool } from './transport/service_pool.js';
export { RdmaTransport, type CallHandler, type RdmaCallContext, type TransportMetrics } from './transport/transport.js';
export { SvcRdmaServer, type SvcRdmaGauges, type SvcRdmaServerCounters, type SvcRdmaServerMetrics, type SvcRdmaServerOptions } from './server.js';
export { RdmaRpcClient, type RdmaRpcClientOptions } from './client/client.js';
export { SvcRdmaThreadedServer, type SvcRdmaThreadedServerOptions, type SvcRdmaThreadsGauges, type SvcRdmaThreadsMetrics } from './threads/threaded_server.js';
export type { WorkerPoolMetrics } from './threads/worker_pool.js';
export type { WorkerCounters } from './threads/worker_metrics.js';
