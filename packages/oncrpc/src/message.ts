/**
 * RPC message headers (RFC 5531 §9): decoding a call header, encoding the reply
 * headers a server sends, and decoding a reply header on the client. The
 * procedure arguments and results are the codecs' business, not this file's.
 */
import { XdrReader, XdrWriter } from '@roce-rpc/xdr';
import { authNone, readOpaqueAuth, writeOpaqueAuth, type OpaqueAuth } from './auth.js';
import { OncRpcError, OncRpcErrorCode } from './errors.js';
import { AcceptStatus, MessageType, RejectStatus, ReplyStatus, RPC_VERSION } from './protocol.js';

export interface CallHeader {
  xid: number;
  rpcVersion: number;
  program: number;
  version: number;
  procedure: number;
  credential: OpaqueAuth;
  verifier: OpaqueAuth;
}

/** Reads the call header that follows xid and mtype (which the caller has read). */
export function readCallBody(reader: XdrReader, xid: number): CallHeader {
  const rpcVersion = reader.readUint();
  const program = reader.readUint();
  const version = reader.readUint();
  const procedure = reader.readUint();
  const credential = readOpaqueAuth(reader);
  const verifier = readOpaqueAuth(reader);
  return { xid, rpcVersion, program, version, procedure, credential, verifier };
}

export function writeCallHeader(writer: XdrWriter, header: Omit<CallHeader, 'rpcVersion'>): void {
  writer.writeUint(header.xid);
  writer.writeUint(MessageType.CALL);
  writer.writeUint(RPC_VERSION);
  writer.writeUint(header.program);
  writer.writeUint(header.version);
  writer.writeUint(header.procedure);
  writeOpaqueAuth(writer, header.credential);
  writeOpaqueAuth(writer, header.verifier);
}

/** MSG_ACCEPTED with our AUTH_NONE verifier, up to and including accept_stat. */
export function writeAcceptedHeader(writer: XdrWriter, xid: number, status: AcceptStatus): void {
  writer.writeUint(xid);
  writer.writeUint(MessageType.REPLY);
  writer.writeUint(ReplyStatus.MSG_ACCEPTED);
  writeOpaqueAuth(writer, authNone);
  writer.writeUint(status);
}

export function writeProgramMismatch(writer: XdrWriter, xid: number, low: number, high: number): void {
  writeAcceptedHeader(writer, xid, AcceptStatus.PROG_MISMATCH);
  writer.writeUint(low);
  writer.writeUint(high);
}

export function writeRpcMismatch(writer: XdrWriter, xid: number): void {
  writer.writeUint(xid);
  writer.writeUint(MessageType.REPLY);
  writer.writeUint(ReplyStatus.MSG_DENIED);
  writer.writeUint(RejectStatus.RPC_MISMATCH);
  writer.writeUint(RPC_VERSION);
  writer.writeUint(RPC_VERSION);
}

export function writeAuthError(writer: XdrWriter, xid: number, authStatus: number): void {
  writer.writeUint(xid);
  writer.writeUint(MessageType.REPLY);
  writer.writeUint(ReplyStatus.MSG_DENIED);
  writer.writeUint(RejectStatus.AUTH_ERROR);
  writer.writeUint(authStatus);
}

const acceptErrors: Record<number, OncRpcErrorCode> = {
  [AcceptStatus.PROG_UNAVAIL]: OncRpcErrorCode.PROG_UNAVAIL,
  [AcceptStatus.PROG_MISMATCH]: OncRpcErrorCode.PROG_MISMATCH,
  [AcceptStatus.PROC_UNAVAIL]: OncRpcErrorCode.PROC_UNAVAIL,
  [AcceptStatus.GARBAGE_ARGS]: OncRpcErrorCode.GARBAGE_ARGS,
  [AcceptStatus.SYSTEM_ERR]: OncRpcErrorCode.SYSTEM_ERR,
};

/**
 * Reads a reply header after xid and mtype. Returns when the reply is SUCCESS
 * (the reader is then at the results); throws an OncRpcError carrying the
 * status otherwise.
 */
export function readReplyBody(reader: XdrReader, xid: number): void {
  const replyStatus = reader.readUint();
  if (replyStatus === ReplyStatus.MSG_ACCEPTED) {
    readOpaqueAuth(reader);
    const status = reader.readUint();
    if (status === AcceptStatus.SUCCESS) return;
    const code = acceptErrors[status];
    if (code === undefined) throw new OncRpcError(OncRpcErrorCode.BAD_REPLY, `unknown accept_stat ${status}`, { xid });
    if (status === AcceptStatus.PROG_MISMATCH) {
      const low = reader.readUint();
      const high = reader.readUint();
      throw new OncRpcError(code, `program version not supported (server has ${low}..${high})`, { xid, low, high });
    }
    throw new OncRpcError(code, `call not accepted: ${code}`, { xid });
  }
  if (replyStatus !== ReplyStatus.MSG_DENIED) throw new OncRpcError(OncRpcErrorCode.BAD_REPLY, `unknown reply_stat ${replyStatus}`, { xid });
  const rejectStatus = reader.readUint();
  if (rejectStatus === RejectStatus.RPC_MISMATCH) {
    const low = reader.readUint();
    const high = reader.readUint();
    throw new OncRpcError(OncRpcErrorCode.RPC_MISMATCH, `RPC version not supported (server has ${low}..${high})`, { xid, low, high });
  }
  if (rejectStatus === RejectStatus.AUTH_ERROR) {
    const authStatus = reader.readUint();
    throw new OncRpcError(OncRpcErrorCode.AUTH_ERROR, `authentication failed (auth_stat ${authStatus})`, { xid, authStatus });
  }
  throw new OncRpcError(OncRpcErrorCode.BAD_REPLY, `unknown reject_stat ${rejectStatus}`, { xid });
}
