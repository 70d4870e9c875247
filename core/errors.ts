/**
 * The one error type that crosses module boundaries in wsd.
 *
 * Plugins turn every SDK or system error into a `WsdError` with one of the closed set of {@link WsdErrorCode}s, so
 * that callers (and `core/api`, which maps codes to gRPC status in exactly one place) never have to understand a
 * backend's own error shapes.
 */
export const wsdErrorCodes = [
  /** The caller sent something malformed; `field` names what. Not retried. */
  'INVALID_ARGUMENT',
  /** The addressed thing (object, workspace, snapshot, backup) does not exist. */
  'NOT_FOUND',
  /** The thing to create exists already. */
  'ALREADY_EXISTS',
  /** The system is not in a state that allows the operation (e.g. a failed init, a plugin that cannot run). */
  'FAILED_PRECONDITION',
  /** Out of disk, quota or another bounded resource. */
  'RESOURCE_EXHAUSTED',
  /** Credentials were refused. Not retried. */
  'PERMISSION_DENIED',
  /** Data could not be made durable or was found corrupt; nothing was deleted because of it. */
  'DATA_LOSS',
  /** A dependency (storage, network) is unreachable or failed transiently; safe to retry. */
  'UNAVAILABLE',
  /** The operation was cancelled through its AbortSignal. */
  'CANCELLED',
  /** A deadline passed before the operation finished. */
  'DEADLINE_EXCEEDED',
  /** A bug or an unexpected failure; the message says what happened. */
  'INTERNAL',
] as const;

export type WsdErrorCode = (typeof wsdErrorCodes)[number];

export interface WsdErrorOptions {
  /** For INVALID_ARGUMENT: the request field or config path at fault, e.g. `metadata.owner`. */
  field?: string;
  cause?: unknown;
}

/**
 * The brand every WsdError carries, registered process-wide (`Symbol.for`): a plugin that bundles its own copy of
 * wsd (ADR 0001) throws errors of *its* WsdError class, which `instanceof` would not recognise; the brand does.
 */
const wsdErrorBrand = Symbol.for('wsd.error.v1');

export class WsdError extends Error {
  override readonly name = 'WsdError';
  readonly code: WsdErrorCode;
  readonly field: string | undefined;
  readonly [wsdErrorBrand] = true;

  constructor(code: WsdErrorCode, message: string, options: WsdErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.field = options.field;
  }

}

/**
 * Whether `error` is a WsdError — of this copy of wsd or of another one a plugin bundles — with a code of the closed
 * set (and `code`, when given). Never use `instanceof WsdError`.
 */
export function isWsdError(error: unknown, code?: WsdErrorCode): error is WsdError {
  if (typeof error !== 'object' || error === null || (error as Record<symbol, unknown>)[wsdErrorBrand] !== true) return false;
  const own = (error as { code?: unknown }).code;
  return (wsdErrorCodes as readonly unknown[]).includes(own) && (code === undefined || own === code);
}

/** Whether `error` is a WsdError (of any copy of wsd) worth retrying with backoff: UNAVAILABLE, DEADLINE_EXCEEDED. */
export function isTransient(error: unknown): boolean {
  return isWsdError(error, 'UNAVAILABLE') || isWsdError(error, 'DEADLINE_EXCEEDED');
}

/**
 * Codes that answer a caller's mistake — a malformed or impossible request (an unknown workspace, a backup that
 * does not exist, an id taken) — rather than a fault of wsd or what it depends on. They are logged at `warn`, not
 * `error`: an operator's error alerts must not fire because a client asked for something wrong.
 */
export const callerMistakeCodes: readonly WsdErrorCode[] = ['INVALID_ARGUMENT', 'NOT_FOUND', 'ALREADY_EXISTS', 'FAILED_PRECONDITION'];

/** The log level for a failure: `warn` for a caller's mistake (see {@link callerMistakeCodes}), else `error`. */
export function failureLogLevel(error: unknown): 'warn' | 'error' {
  return isWsdError(error) && callerMistakeCodes.includes(error.code) ? 'warn' : 'error';
}

/** Wraps anything thrown into a WsdError, keeping an existing WsdError (of any copy of wsd) as it is. */
export function toWsdError(error: unknown, fallback: WsdErrorCode = 'INTERNAL', context?: string): WsdError {
  if (isWsdError(error)) return error;
  if (isAbortError(error)) return new WsdError('CANCELLED', context ? `${context}: cancelled` : 'cancelled', { cause: error });
  const message = error instanceof Error ? error.message : String(error);
  return new WsdError(fallback, context ? `${context}: ${message}` : message, { cause: error });
}

export function isAbortError(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || (error as NodeJS.ErrnoException).code === 'ABORT_ERR');
}

/** The errno code of a Node.js system error, or undefined. */
export function errnoCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;
}
