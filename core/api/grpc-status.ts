import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { toWsdError, type WsdErrorCode } from '../errors.js';
import { scrubSecrets } from '../observability/redact.js';

/** The one place WsdError codes become gRPC status codes. */
const toGrpc: Record<WsdErrorCode, status> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  DATA_LOSS: status.DATA_LOSS,
  UNAVAILABLE: status.UNAVAILABLE,
  CANCELLED: status.CANCELLED,
  DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
  INTERNAL: status.INTERNAL,
};

/** A gRPC error for anything thrown by core; the field at fault travels as `wsd-field` trailing metadata. */
export function toServiceError(error: unknown): Partial<ServiceError> {
  const wsd = toWsdError(error);
  const metadata = new Metadata();
  if (wsd.field) metadata.set('wsd-field', wsd.field);
  // Error texts can quote a URL from a request: never its credentials or presigned query.
  return { code: toGrpc[wsd.code], details: scrubSecrets(wsd.message), metadata };
}

/** The gRPC status name (`NOT_FOUND`) for a code number, for CLI output. */
export function statusName(code: number): string {
  return (status as unknown as Record<number, string>)[code] ?? `UNKNOWN(${code})`;
}

