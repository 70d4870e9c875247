import { WsdError, errnoCode, isAbortError, isWsdError, type WsdErrorCode } from '../../../core/plugin-api.js';
import { GcsAuthError, GcsHttpError, GcsTimeoutError } from './gcs-http.js';

/** Network failures worth another try. */
const transientNetworkCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);

/** Failures that happen before a request leaves this host: the service cannot have acted on it. */
const unsentCodes = new Set(['ECONNREFUSED', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EADDRNOTAVAIL']);

/** Statuses worth another try (Google's own list: timeouts, rate limits, server errors; not 501). */
const transientStatuses = new Set([408, 429, 500, 502, 503, 504]);

/** Rate limits the service has answered with 403 in the past (today it uses 429). */
const rateLimitReasons = new Set(['rateLimitExceeded', 'userRateLimitExceeded']);

/** Whether another try may succeed: 408, 429, 5xx, rate limits, resets, timeouts, a token service that is down. */
export function isRetryable(error: unknown): boolean {
  if (isWsdError(error) || isAbortError(error)) return false;
  if (error instanceof GcsHttpError) {
    return transientStatuses.has(error.status) || (error.status === 403 && rateLimitReasons.has(error.reason ?? ''));
  }
  if (error instanceof GcsAuthError) return isRetryable(error.cause) || transientStatusOf(error.cause);
  if (error instanceof GcsTimeoutError) return true;
  const code = errnoCode(error);
  return code !== undefined && transientNetworkCodes.has(code);
}

/** Whether the request surely never reached the service (so a conditional put may be repeated without doubt). */
export function neverSent(error: unknown): boolean {
  if (error instanceof GcsAuthError) return true;
  const code = errnoCode(error);
  return code !== undefined && unsentCodes.has(code);
}

/**
 * The WsdError a failure stands for. `what` says what was done and on which object (`storage/gcs: put "a/b"`); the
 * message adds the service's own reason. SDK, auth-library and network errors end here: none leaves the plugin.
 */
export function toWsdError(error: unknown, what: string): WsdError {
  if (isWsdError(error)) return error;
  if (isAbortError(error)) return new WsdError('CANCELLED', `${what}: cancelled`, { cause: error });
  if (error instanceof GcsHttpError) {
    return new WsdError(codeForStatus(error), `${what}: ${describeHttp(error)}`, { cause: error });
  }
  if (error instanceof GcsAuthError) {
    const code: WsdErrorCode = isRetryable(error) ? 'UNAVAILABLE' : 'PERMISSION_DENIED';
    const hint = code === 'PERMISSION_DENIED' ? ' (check keyFile, GOOGLE_APPLICATION_CREDENTIALS or the workload identity; anonymous: true for emulators)' : '';
    return new WsdError(code, `${what}: credentials could not be used: ${error.message}${hint}`, { cause: error });
  }
  if (error instanceof GcsTimeoutError) return new WsdError('UNAVAILABLE', `${what}: ${error.message}`, { cause: error });
  const code = errnoCode(error);
  const message = error instanceof Error ? error.message : String(error);
  if (code !== undefined && transientNetworkCodes.has(code)) {
    return new WsdError('UNAVAILABLE', `${what}: the service is unreachable (${code}: ${message})`, { cause: error });
  }
  if (code !== undefined && /CERT|SSL|TLS|SELF_SIGNED|VERIFY|ISSUER/.test(code)) {
    return new WsdError('UNAVAILABLE', `${what}: TLS failed (${code}: ${message}); a private endpoint may need caFile`, { cause: error });
  }
  return new WsdError('INTERNAL', `${what}: ${message}`, { cause: error });
}

function codeForStatus(error: GcsHttpError): WsdErrorCode {
  const { status } = error;
  if (status === 401 || (status === 403 && !rateLimitReasons.has(error.reason ?? ''))) return 'PERMISSION_DENIED';
  if (status === 404) return 'NOT_FOUND';
  if (status === 409) return 'ALREADY_EXISTS';
  if (status === 412) return 'FAILED_PRECONDITION';
  if (status === 400 || status === 411 || status === 413 || status === 416) return 'INVALID_ARGUMENT';
  if (isRetryable(error)) return 'UNAVAILABLE';
  return 'INTERNAL';
}

function describeHttp(error: GcsHttpError): string {
  const reason = error.reason ? ` ${error.reason}` : '';
  return `HTTP ${error.status}${reason}${error.message ? `: ${error.message}` : ''}`;
}

function transientStatusOf(cause: unknown): boolean {
  const status = (cause as { response?: { status?: unknown }; status?: unknown })?.response?.status ?? (cause as { status?: unknown })?.status;
  return typeof status === 'number' && transientStatuses.has(status);
}
