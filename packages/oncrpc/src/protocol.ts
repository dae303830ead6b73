/**
 * ONC RPC version 2 wire protocol (RFC 5531): message layout, the values of
 * each field, and the limits the RFC sets. Nothing else lives here.
 *
 *   rpc_msg      = xid:uint  mtype:msg_type  body
 *   call_body    = rpcvers:uint(=2) prog:uint vers:uint proc:uint cred:opaque_auth verf:opaque_auth  <args>
 *   opaque_auth  = flavor:auth_flavor  body:opaque<400>
 *   reply_body   = MSG_ACCEPTED accepted_reply | MSG_DENIED rejected_reply
 *   accepted     = verf:opaque_auth  stat:accept_stat  [SUCCESS: <results> | PROG_MISMATCH: low:uint high:uint]
 *   rejected     = RPC_MISMATCH low:uint high:uint | AUTH_ERROR stat:auth_stat
 *
 * Record marking (§11), for stream transports: each record is one or more
 * fragments, each preceded by a 4-byte big-endian header whose top bit marks the
 * last fragment and whose low 31 bits give the fragment's length.
 */

export const RPC_VERSION = 2;

export const MessageType = { CALL: 0, REPLY: 1 } as const;

export const ReplyStatus = { MSG_ACCEPTED: 0, MSG_DENIED: 1 } as const;

export const AcceptStatus = {
  SUCCESS: 0,
  PROG_UNAVAIL: 1,
  PROG_MISMATCH: 2,
  PROC_UNAVAIL: 3,
  GARBAGE_ARGS: 4,
  SYSTEM_ERR: 5,
} as const;
export type AcceptStatus = (typeof AcceptStatus)[keyof typeof AcceptStatus];

export const RejectStatus = { RPC_MISMATCH: 0, AUTH_ERROR: 1 } as const;

export const AuthFlavor = {
  AUTH_NONE: 0,
  AUTH_SYS: 1,
  AUTH_SHORT: 2,
  AUTH_DH: 3,
  RPCSEC_GSS: 6,
} as const;

export const AuthStatus = {
  AUTH_OK: 0,
  AUTH_BADCRED: 1,
  AUTH_REJECTEDCRED: 2,
  AUTH_BADVERF: 3,
  AUTH_REJECTEDVERF: 4,
  AUTH_TOOWEAK: 5,
  AUTH_INVALIDRESP: 6,
  AUTH_FAILED: 7,
} as const;
export type AuthStatus = (typeof AuthStatus)[keyof typeof AuthStatus];

/** RFC 5531 §8.2: opaque_auth bodies are at most 400 bytes. */
export const AUTH_BODY_BYTES_MAX = 400;

/** RFC 5531 Appendix A: authsys_parms.machinename is string<255>. */
export const AUTH_SYS_MACHINE_NAME_BYTES_MAX = 255;

/** RFC 5531 Appendix A: authsys_parms.gids is uint<16>. */
export const AUTH_SYS_GIDS_MAX = 16;

/**
 * Smallest call header: xid, mtype, rpcvers, prog, vers, proc and two empty
 * opaque_auths (flavor + length each) = 10 units.
 */
export const CALL_HEADER_BYTES_MIN = 40;

/** xid and mtype: what must be present before anything can be answered. */
export const MESSAGE_PREFIX_BYTES = 8;

/** §11 record marking: the last-fragment flag of a fragment header. */
export const RECORD_LAST_FRAGMENT = 0x8000_0000;

/** §11: the fragment length field (low 31 bits). */
export const RECORD_FRAGMENT_LENGTH_MASK = 0x7fff_ffff;

export const RECORD_HEADER_BYTES = 4;

/** Procedure 0 of every program is the NULL procedure by convention (§12.1). */
export const NULL_PROCEDURE = 0;
