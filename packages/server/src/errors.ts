/**
 * Errors with stable codes. Operating errors (bad configuration, a port in
 * use, a flood) are ServerError; programmer errors are node:assert failures.
 */

export const ServerErrorCode = {
  /** A configuration value is out of range or of the wrong type; `field` names it. */
  CONFIG_INVALID: 'ERR_SERVER_CONFIG_INVALID',
  /** A configuration source names an option that does not exist; `field` names it. */
  CONFIG_UNKNOWN_OPTION: 'ERR_SERVER_CONFIG_UNKNOWN_OPTION',
  /** The `--config` file cannot be read or is not a JSON object. */
  CONFIG_FILE: 'ERR_SERVER_CONFIG_FILE',
  /** A listening address is already taken by another program. */
  ADDRESS_IN_USE: 'ERR_SERVER_ADDRESS_IN_USE',
  /** The service module does not export a valid service definition. */
  SERVICE_INVALID: 'ERR_SERVER_SERVICE_INVALID',
  /** A server process exited while starting, without saying why (see its log). */
  START_FAILED: 'ERR_SERVER_START_FAILED',
  /** The process is at maxInFlightCalls: the call is refused with the protocol's error reply. */
  BUSY: 'ERR_SERVER_BUSY',
} as const;
export type ServerErrorCode = (typeof ServerErrorCode)[keyof typeof ServerErrorCode];

export class ServerError extends Error {
  readonly code: ServerErrorCode;
  /** The configuration field at fault, for CONFIG_* codes. */
  readonly field: string | undefined;

  constructor(code: ServerErrorCode, message: string, field?: string) {
    super(message);
    this.name = 'ServerError';
    this.code = code;
    this.field = field;
  }
}

export function invalidField(field: string, problem: string): ServerError {
  return new ServerError(ServerErrorCode.CONFIG_INVALID, `invalid configuration: ${field} ${problem}`, field);
}
