import type { handleUnaryCall, sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import type { Logger } from '../observability/logger.js';
import { toServiceError } from './grpc-status.js';

/**
 * Adapts an async handler to grpc-js: the handler's result or error (mapped in one place) goes to the caller.
 * The handler's work is not cancelled when the caller disconnects; core decides what outlives a call.
 */
export function unary<Req, Res>(method: string, log: Logger, fn: (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    fn(call.request, call).then(
      (response) => callback(null, response),
      (error: unknown) => {
        const serviceError = toServiceError(error);
        log.debug('rpc failed', { method, code: serviceError.code, details: serviceError.details });
        callback(serviceError);
      },
    );
  };
}
