/**
 * The package's error: every failure, native or not, surfaces as a
 * `VerbsError` whose `code` is stable — an errno name (`EINVAL`, `ENODEV`,
 * `ECONNREFUSED`, `EBUSY`...) or one of the `ERR_VERBS_*` codes below.
 */

/** Codes the package itself defines (errno names come from the kernel). */
export const ErrorCode = {
  /** The object was closed; nothing is left to act on. */
  CLOSED: 'ERR_VERBS_CLOSED',
  /** A CQ with a completion thread was polled directly. */
  CQ_THREADED: 'ERR_VERBS_CQ_THREADED',
  /** The native addon could not be loaded. */
  LOAD_FAILED: 'ERR_VERBS_LOAD_FAILED',
  /** An argument of the wrong type. */
  INVALID_ARG_TYPE: 'ERR_INVALID_ARG_TYPE',
  /** A connection attempt or accept failed with an rdma_cm event. */
  CONNECTION_FAILED: 'ERR_VERBS_CONNECTION_FAILED',
  /** A bug of ours caught at the native boundary. */
  INTERNAL: 'ERR_VERBS_INTERNAL',
} as const;

/** An error of this package, with a stable `code`. */
export class VerbsError extends Error {
  override name = 'VerbsError';
  /** Stable code: an errno name or an `ERR_VERBS_*` code. */
  readonly code: string;
  /** The errno behind the failure, when there is one. */
  readonly errno: number | undefined;

  constructor(code: string, message: string, options?: { errno?: number | undefined; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.errno = options?.errno;
  }
}

/** Turns an error thrown by the addon into a VerbsError (others pass through). */
export function fromNative(error: unknown): unknown {
  if (error instanceof VerbsError || !(error instanceof Error)) return error;
  const { code, errno } = error as Error & { code?: unknown; errno?: unknown };
  if (typeof code !== 'string') return error;
  return new VerbsError(code, error.message, { errno: typeof errno === 'number' ? errno : undefined, cause: error });
}

/** Runs a native call, rethrowing its error as a VerbsError. */
export function native<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    throw fromNative(error);
  }
}
