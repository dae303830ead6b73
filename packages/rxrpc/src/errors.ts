/**
 * Errors with stable codes. Operating errors (a peer's bad packet, a dead
 * call) are RxError; programmer errors are node:assert failures.
 */

export type RxErrorCodeName =
  | 'ERR_RX_SHORT_PACKET'
  | 'ERR_RX_BAD_PACKET'
  | 'ERR_RX_OPTION'
  | 'ERR_RX_NATIVE_UNAVAILABLE'
  | 'ERR_RX_CALL_ABORTED'
  | 'ERR_RX_CALL_DEAD'
  | 'ERR_RX_CALL_TIMEOUT'
  | 'ERR_RX_BUSY'
  | 'ERR_RX_CLOSED'
  | 'ERR_RX_NO_CHANNEL';

export class RxError extends Error {
  readonly code: RxErrorCodeName;
  /** The Rx abort code carried on the wire, when the error is or becomes an ABORT. */
  readonly abortCode: number | undefined;

  constructor(code: RxErrorCodeName, message: string, abortCode?: number) {
    super(message);
    this.name = 'RxError';
    this.code = code;
    this.abortCode = abortCode;
  }
}

export function malformed(reason: string): RxError {
  return new RxError('ERR_RX_BAD_PACKET', reason);
}
