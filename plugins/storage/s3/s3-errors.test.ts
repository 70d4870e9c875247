import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WsdError } from '../../../core/errors.js';
import { S3ServiceError, S3TimeoutError, retryClass, toS3Error, type FailureContext } from './s3-errors.js';

const context: FailureContext = { operation: 'put a/b', bucket: 'bkt', endpoint: 'https://s3.example' };
const errno = (code: string, message = code) => Object.assign(new Error(message), { code });

describe('storage/s3 error mapping', () => {
  it('maps S3 answers to the closed set of codes', () => {
    const cases: Array<[S3ServiceError, FailureContext['condition'], string]> = [
      [new S3ServiceError(404, 'NoSuchKey', 'The specified key does not exist.'), undefined, 'NOT_FOUND'],
      [new S3ServiceError(404, 'NotFound', ''), undefined, 'NOT_FOUND'],
      [new S3ServiceError(404, 'NoSuchBucket', 'The specified bucket does not exist'), undefined, 'FAILED_PRECONDITION'],
      [new S3ServiceError(403, 'AccessDenied', 'Access Denied.'), undefined, 'PERMISSION_DENIED'],
      [new S3ServiceError(403, 'InvalidAccessKeyId', ''), undefined, 'PERMISSION_DENIED'],
      [new S3ServiceError(403, 'SignatureDoesNotMatch', ''), undefined, 'PERMISSION_DENIED'],
      [new S3ServiceError(400, 'ExpiredToken', ''), undefined, 'PERMISSION_DENIED'],
      [new S3ServiceError(412, 'PreconditionFailed', ''), 'ifNoneMatch', 'ALREADY_EXISTS'],
      [new S3ServiceError(412, 'PreconditionFailed', ''), 'ifMatch', 'FAILED_PRECONDITION'],
      [new S3ServiceError(409, 'ConditionalRequestConflict', ''), 'ifNoneMatch', 'ALREADY_EXISTS'],
      [new S3ServiceError(409, 'ConditionalRequestConflict', ''), 'ifMatch', 'FAILED_PRECONDITION'],
      [new S3ServiceError(404, 'NoSuchKey', ''), 'ifMatch', 'FAILED_PRECONDITION'],
      [new S3ServiceError(416, 'InvalidRange', ''), undefined, 'INVALID_ARGUMENT'],
      [new S3ServiceError(503, 'SlowDown', ''), undefined, 'UNAVAILABLE'],
      [new S3ServiceError(500, 'InternalError', ''), undefined, 'UNAVAILABLE'],
      [new S3ServiceError(400, 'RequestTimeout', ''), undefined, 'UNAVAILABLE'],
      [new S3ServiceError(200, 'InternalError', 'after 200'), undefined, 'UNAVAILABLE'],
      [new S3ServiceError(507, 'XMinioStorageFull', ''), undefined, 'RESOURCE_EXHAUSTED'],
      [new S3ServiceError(400, 'AuthorizationHeaderMalformed', 'the region is wrong'), undefined, 'FAILED_PRECONDITION'],
      [new S3ServiceError(400, 'MalformedXML', ''), undefined, 'INTERNAL'],
    ];
    for (const [error, condition, code] of cases) {
      const mapped = toS3Error(error, { ...context, condition });
      assert.equal(mapped.code, code, `${error.status} ${error.code} (${condition ?? 'no condition'})`);
      assert.ok(mapped.message.startsWith('storage/s3: put a/b (bucket bkt at https://s3.example): '), mapped.message);
      assert.equal(mapped.cause, error);
    }
  });

  it('maps connection failures, timeouts, TLS and aborts', () => {
    assert.equal(toS3Error(errno('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:9'), context).code, 'UNAVAILABLE');
    assert.equal(toS3Error(errno('ECONNRESET'), context).code, 'UNAVAILABLE');
    assert.equal(toS3Error(new S3TimeoutError(5000), { ...context, attempts: 3 }).message, 'storage/s3: put a/b (bucket bkt at https://s3.example): no answer within 5000 ms (ETIMEDOUT) (after 3 tries)');
    assert.equal(toS3Error(errno('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'), context).code, 'FAILED_PRECONDITION');
    assert.equal(toS3Error(Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }), context).code, 'CANCELLED');
    const own = new WsdError('FAILED_PRECONDITION', 'storage/s3: credentials.accessKeyIdFile /x cannot be read (ENOENT)');
    assert.equal(toS3Error(new Error('Unable to get credentials', { cause: own }), context), own, "a credential source's own error is kept");
  });

  it('tells which failures may be retried, and which prove the server did not act', () => {
    assert.equal(retryClass(errno('ECONNREFUSED')), 'safe');
    assert.equal(retryClass(new S3ServiceError(503, 'SlowDown', '')), 'safe');
    assert.equal(retryClass(new S3ServiceError(429, 'TooManyRequests', '')), 'safe');
    assert.equal(retryClass(errno('ECONNRESET')), 'ambiguous');
    assert.equal(retryClass(new Error('socket hang up')), 'ambiguous');
    assert.equal(retryClass(new S3TimeoutError(1)), 'ambiguous');
    assert.equal(retryClass(new S3ServiceError(500, 'InternalError', '')), 'ambiguous');
    assert.equal(retryClass(new S3ServiceError(412, 'PreconditionFailed', '')), 'never');
    assert.equal(retryClass(new S3ServiceError(403, 'AccessDenied', '')), 'never');
    assert.equal(retryClass(errno('CERT_HAS_EXPIRED')), 'never');
  });
});
