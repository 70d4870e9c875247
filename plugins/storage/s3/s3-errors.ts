import { WsdError, errnoCode, isAbortError, isWsdError, type WsdErrorCode } from '../../../core/plugin-api.js';
import { credentialFailure } from './s3-credentials.js';

/** An S3 answer with an unexpected status: its HTTP status and the service's error code and message. */
export class S3ServiceError extends Error {
  override readonly name = 'S3ServiceError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId?: string,
  ) {
    super(message);
  }
}

/** A request on which the server moved no data for `requestTimeout`. */
export class S3TimeoutError extends Error {
  override readonly name = 'S3TimeoutError';
  readonly code = 'ETIMEDOUT';
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

/**
 * Whether trying a failed request again is right:
 * - `safe`: the request certainly did not take effect (nothing connected, or the server refused it before acting:
 *   throttling) — retried even when it is a conditional write;
 * - `ambiguous`: transient, but the server may have acted (a reset or timeout after the request was sent, a 500) —
 *   retried when the request is idempotent, otherwise resolved by reading the object;
 * - `never`: permanent (credentials, a missing object, a refused condition, a bad request).
 */
export type RetryClass = 'safe' | 'ambiguous' | 'never';

/** Connection failures that happen before a request can reach the server. */
const unsentErrnos = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
/** Connection failures after the request may have been (partly) sent. */
const brokenErrnos = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET']);
/** Certificate problems: a configuration fault (caFile, endpoint), never fixed by trying again. */
const tlsErrno = /^(CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_TLS_|ERR_SSL_)/;

/** S3 error codes that mean "try again later" with a 4xx status. */
const transientCodes = new Set(['RequestTimeout', 'SlowDown', 'OperationAborted', 'InternalError', 'ServiceUnavailable', 'BadDigest', 'IncompleteBody', 'XMinioServerNotInitialized']);
const credentialCodes = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'AccountProblem',
  'AllAccessDisabled',
  'InvalidSecurity',
  'RequestTimeTooSkewed',
  'NotSignedUp',
]);

export function retryClass(error: unknown): RetryClass {
  if (isAbortError(error) || credentialFailure(error)) return 'never';
  if (error instanceof S3ServiceError) {
    if (error.status === 503 || error.status === 429 || error.code === 'SlowDown') return 'safe';
    if (error.status >= 500 || transientCodes.has(error.code)) return 'ambiguous';
    return 'never';
  }
  const errno = errnoCode(error);
  if (errno && unsentErrnos.has(errno)) return 'safe';
  if (errno && tlsErrno.test(errno)) return 'never';
  if (error instanceof S3TimeoutError || (errno && brokenErrnos.has(errno))) return 'ambiguous';
  // "socket hang up", "aborted": the connection ended before a full answer.
  if (error instanceof Error && /socket hang up|^aborted$|other side closed/i.test(error.message)) return 'ambiguous';
  return 'never';
}

export interface FailureContext {
  /** What was being done, e.g. `put alice/x` or `start`. */
  operation: string;
  bucket: string;
  endpoint: string;
  /** The condition of a conditional put: decides what a 412/409 means. */
  condition?: 'ifNoneMatch' | 'ifMatch' | undefined;
  /** The request was retried this many times in all. */
  attempts?: number;
}

/**
 * Any failure of an S3 request as the WsdError callers see: NOT_FOUND only for a missing object, PERMISSION_DENIED
 * for refused credentials, ALREADY_EXISTS / FAILED_PRECONDITION for refused conditions, UNAVAILABLE for transient
 * failures (after retries), CANCELLED for an abort. The message names the plugin, the bucket, the operation and the
 * service's reason; never a credential (S3 error messages hold none, and this code adds none).
 */
export function toS3Error(error: unknown, context: FailureContext): WsdError {
  const where = `storage/s3: ${context.operation} (bucket ${context.bucket} at ${context.endpoint})`;
  const credential = credentialFailure(error);
  if (credential) return credential;
  if (isWsdError(error)) return error;
  if (isAbortError(error)) return new WsdError('CANCELLED', `${where}: cancelled`, { cause: error });
  const tries = context.attempts && context.attempts > 1 ? ` (after ${context.attempts} tries)` : '';
  if (error instanceof S3ServiceError) {
    const reason = `${error.status} ${error.code}${error.message ? `: ${error.message}` : ''}`;
    return new WsdError(codeOfServiceError(error, context), `${where}: ${reason}${tries}`, { cause: error });
  }
  const errno = errnoCode(error);
  const message = error instanceof Error ? error.message : String(error);
  if (errno && tlsErrno.test(errno)) {
    return new WsdError('FAILED_PRECONDITION', `${where}: TLS: ${message} (is the server's CA in caFile?)`, { cause: error });
  }
  if (retryClass(error) !== 'never') return new WsdError('UNAVAILABLE', `${where}: ${message}${errno && !message.includes(errno) ? ` (${errno})` : ''}${tries}`, { cause: error });
  return new WsdError('INTERNAL', `${where}: ${message}`, { cause: error });
}

function codeOfServiceError(error: S3ServiceError, context: FailureContext): WsdErrorCode {
  const refusal: WsdErrorCode | undefined =
    context.condition === 'ifNoneMatch' ? 'ALREADY_EXISTS' : context.condition === 'ifMatch' ? 'FAILED_PRECONDITION' : undefined;
  // A refused condition: 412 PreconditionFailed; 409 ConditionalRequestConflict when a concurrent conditional write
  // won; 404 NoSuchKey for If-Match on a missing key (ADR 0005).
  if (refusal && (error.status === 412 || error.code === 'PreconditionFailed' || error.code === 'ConditionalRequestConflict')) return refusal;
  if (refusal === 'FAILED_PRECONDITION' && error.code === 'NoSuchKey') return refusal;
  if (error.code === 'NoSuchBucket') return 'FAILED_PRECONDITION';
  if (error.code === 'NoSuchKey' || (error.status === 404 && (error.code === 'NotFound' || error.code === ''))) return 'NOT_FOUND';
  if (error.status === 401 || error.status === 403 || credentialCodes.has(error.code)) return 'PERMISSION_DENIED';
  if (error.status === 416 || error.code === 'InvalidRange') return 'INVALID_ARGUMENT';
  if (error.status === 507 || /QuotaExceeded|StorageFull|InsufficientCapacity/i.test(error.code)) return 'RESOURCE_EXHAUSTED';
  if (error.code === 'EntityTooLarge' || error.code === 'KeyTooLongError') return 'INVALID_ARGUMENT';
  if (error.code === 'AuthorizationHeaderMalformed' || error.code === 'PermanentRedirect' || error.code === 'InvalidRegion' || error.status === 301) {
    return 'FAILED_PRECONDITION';
  }
  if (retryClass(error) !== 'never') return 'UNAVAILABLE';
  return 'INTERNAL';
}
