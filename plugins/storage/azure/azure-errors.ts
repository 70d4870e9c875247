import { WsdError, isAbortError, isWsdError, scrubSecrets } from '../../../core/plugin-api.js';

/** What a failed request was doing, for messages: `put "a/b"`, and where. */
export interface AzureErrorContext {
  /** e.g. `put "alice/backups/x.tar.zst"` */
  what: string;
  container: string;
  endpoint: string;
}

/** A mapped error and whether another try could succeed. */
export interface MappedAzureError {
  error: WsdError;
  retryable: boolean;
  /** Azure's error code (`BlobNotFound`, `ConditionNotMet`…), when the service sent one. */
  azureCode?: string;
}

/** The shape of `@azure/core-rest-pipeline`'s RestError that matters here (it is not exported by the blob SDK). */
interface RestErrorLike {
  name?: string;
  message?: string;
  code?: string;
  statusCode?: number;
  response?: { headers?: { get(name: string): string | undefined } };
}

/** Network failures worth another try: the request did not get an answer. */
const transientNetworkCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'REQUEST_SEND_ERROR',
  'PARSE_ERROR',
]);

/** TLS failures: the same answer every time until the config (caFile, endpoint) changes. */
const tlsCodes = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS|ERR_SSL|DEPTH_ZERO/;

/**
 * Turns whatever the Azure SDK threw into a {@link WsdError} of the closed set, naming the backend, the operation,
 * the HTTP status and Azure's error code. Texts are scrubbed of URL queries (a SAS token lives there); the SDK error
 * is not kept as `cause`, because it carries the request with its headers and URL.
 */
export function mapAzureError(error: unknown, context: AzureErrorContext): MappedAzureError {
  if (isWsdError(error)) return { error, retryable: error.code === 'UNAVAILABLE' };
  if (isAbortError(error)) return { error: new WsdError('CANCELLED', `storage/azure ${context.what}: cancelled`), retryable: false };
  const e = (error ?? {}) as RestErrorLike;
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  // HEAD answers carry no body: Azure's code is then only in the x-ms-error-code header.
  const code = e.code ?? e.response?.headers?.get('x-ms-error-code') ?? undefined;
  const detail = firstLine(e.message);
  const tag = [status, code].filter((x) => x !== undefined).join(' ');
  const text = (reason: string) => scrubSecrets(`storage/azure ${context.what}: ${reason}${tag ? ` (${tag})` : ''}`);
  const make = (wsdCode: WsdError['code'], reason: string, retryable = false, field?: string): MappedAzureError => ({
    error: new WsdError(wsdCode, text(reason), field ? { field } : {}),
    retryable,
    ...(status !== undefined && code ? { azureCode: code } : {}),
  });

  if (status === undefined) {
    if (code && tlsCodes.test(code)) {
      return make('UNAVAILABLE', `TLS connection to ${context.endpoint} refused: ${detail} (set caFile if the endpoint uses a private CA)`);
    }
    if (code && transientNetworkCodes.has(code)) return make('UNAVAILABLE', `cannot reach ${context.endpoint}: ${detail}`, true);
    if (/timed? ?out/i.test(detail)) return make('UNAVAILABLE', `no answer from ${context.endpoint}: ${detail}`, true);
    return make('INTERNAL', `unexpected failure: ${detail || String(error)}`);
  }
  switch (code) {
    case 'BlobNotFound':
      return make('NOT_FOUND', 'no such object');
    case 'ContainerNotFound':
      return make('FAILED_PRECONDITION', `container "${context.container}" does not exist at ${context.endpoint}`);
    case 'BlobAlreadyExists':
      return make('ALREADY_EXISTS', 'the object exists already (ifNoneMatch)');
    case 'ConditionNotMet':
    case 'TargetConditionNotMet':
      return make('FAILED_PRECONDITION', 'the object is not at the expected version (ifMatch)');
    case 'InvalidRange':
      return make('INVALID_ARGUMENT', 'the range starts past the end of the object', false, 'range.offset');
    case 'InvalidBlockList':
      // Azure keeps one uncommitted block list per blob name: another writer's commit of the same key discarded
      // this put's staged blocks. Another try of the whole put (by the caller) would succeed.
      return make('UNAVAILABLE', 'a concurrent put of the same key committed first and discarded the blocks this put had staged; put again');
    case 'ContainerBeingDeleted':
      return make('UNAVAILABLE', `container "${context.container}" is being deleted`, true);
    case 'BlockCountExceedsLimit':
    case 'RequestEntityTooLargeBlockCountExceedsLimit':
    case 'BlobOverwritten':
      return make('RESOURCE_EXHAUSTED', detail || 'too many blocks');
    case 'InvalidResourceName':
    case 'OutOfRangeInput':
    case 'InvalidUri':
      return make('INVALID_ARGUMENT', `Azure refuses the name: ${detail}`, false, 'key');
    case 'AccountIsDisabled':
      return make('PERMISSION_DENIED', `the account at ${context.endpoint} is disabled`);
  }
  if (status === 401 || status === 403) {
    return make('PERMISSION_DENIED', `credentials refused by ${context.endpoint}${detail ? `: ${detail}` : ''}`);
  }
  if (status === 404) return make('NOT_FOUND', 'no such object');
  if (status === 409 && code === 'ContainerAlreadyExists') return make('ALREADY_EXISTS', detail);
  if (status === 412) return make('FAILED_PRECONDITION', 'the object is not at the expected version (ifMatch)');
  if (status === 408 || status === 429 || status >= 500) {
    return make('UNAVAILABLE', `${context.endpoint} answered ${status}${detail ? `: ${detail}` : ''}`, true);
  }
  return make('INTERNAL', `unexpected answer from ${context.endpoint}${detail ? `: ${detail}` : ''}`);
}

function firstLine(message: string | undefined): string {
  return (message ?? '').split('\n')[0]!.trim().slice(0, 300);
}
