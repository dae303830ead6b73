/**
 * ONC RPC errors with stable codes: those a client sees for a rejected or
 * unsuccessful reply (carrying the RFC 5531 status), and transport errors.
 */

export const OncRpcErrorCode = {
  PROG_UNAVAIL: 'ERR_ONCRPC_PROG_UNAVAIL',
  PROG_MISMATCH: 'ERR_ONCRPC_PROG_MISMATCH',
  PROC_UNAVAIL: 'ERR_ONCRPC_PROC_UNAVAIL',
  GARBAGE_ARGS: 'ERR_ONCRPC_GARBAGE_ARGS',
  SYSTEM_ERR: 'ERR_ONCRPC_SYSTEM_ERR',
  RPC_MISMATCH: 'ERR_ONCRPC_RPC_MISMATCH',
  AUTH_ERROR: 'ERR_ONCRPC_AUTH_ERROR',
  /** A reply that is not a well-formed RPC reply. */
  BAD_REPLY: 'ERR_ONCRPC_BAD_REPLY',
  /** A record-marking stream that breaks §11 or our bounds (the connection is closed). */
  BAD_RECORD: 'ERR_ONCRPC_BAD_RECORD',
  RECORD_TOO_LARGE: 'ERR_ONCRPC_RECORD_TOO_LARGE',
  TIMEOUT: 'ERR_ONCRPC_TIMEOUT',
  CONNECTION_CLOSED: 'ERR_ONCRPC_CONNECTION_CLOSED',
  TOO_MANY_CALLS: 'ERR_ONCRPC_TOO_MANY_CALLS',
  /** A service registration that conflicts with an existing one. */
  BAD_REGISTRATION: 'ERR_ONCRPC_BAD_REGISTRATION',
} as const;

export type OncRpcErrorCode = (typeof OncRpcErrorCode)[keyof typeof OncRpcErrorCode];

export interface OncRpcErrorDetails {
  /** PROG_MISMATCH / RPC_MISMATCH: the supported range. */
  low?: number;
  high?: number;
  /** AUTH_ERROR: the auth_stat. */
  authStatus?: number;
  xid?: number;
}

export class OncRpcError extends Error {
  readonly code: OncRpcErrorCode;
  readonly details: OncRpcErrorDetails;

  constructor(code: OncRpcErrorCode, message: string, details: OncRpcErrorDetails = {}, options?: ErrorOptions) {
    super(message, options);
    this.name = 'OncRpcError';
    this.code = code;
    this.details = details;
  }
}
