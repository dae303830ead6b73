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
  type CallHeaderFields,
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
