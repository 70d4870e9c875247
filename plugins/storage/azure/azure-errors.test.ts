import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mapAzureError } from './azure-errors.js';

const context = { what: 'put "a/b"', container: 'wsd', endpoint: 'https://acct.blob.core.windows.net' };
/** What the SDK throws: a RestError with the HTTP status and Azure's code (from the body or x-ms-error-code). */
const rest = (statusCode: number | undefined, code: string | undefined, message = 'x') =>
  Object.assign(new Error(message), { name: 'RestError', statusCode, code });

describe('mapAzureError', () => {
  it('maps every answer to a code of the closed set and says whether another try may help', () => {
    const cases: [unknown, string, boolean][] = [
      [rest(404, 'BlobNotFound'), 'NOT_FOUND', false],
      [rest(404, undefined), 'NOT_FOUND', false],
      [rest(404, 'ContainerNotFound'), 'FAILED_PRECONDITION', false],
      [rest(409, 'BlobAlreadyExists'), 'ALREADY_EXISTS', false],
      [rest(412, 'ConditionNotMet'), 'FAILED_PRECONDITION', false],
      [rest(416, 'InvalidRange'), 'INVALID_ARGUMENT', false],
      [rest(403, 'AuthorizationFailure'), 'PERMISSION_DENIED', false],
      [rest(403, 'AuthorizationPermissionMismatch'), 'PERMISSION_DENIED', false],
      [rest(401, 'InvalidAuthenticationInfo'), 'PERMISSION_DENIED', false],
      [rest(403, 'AccountIsDisabled'), 'PERMISSION_DENIED', false],
      [rest(400, 'InvalidBlockList'), 'UNAVAILABLE', false],
      [rest(409, 'BlockCountExceedsLimit'), 'RESOURCE_EXHAUSTED', false],
      [rest(400, 'InvalidResourceName'), 'INVALID_ARGUMENT', false],
      [rest(400, 'InvalidHeaderValue'), 'INTERNAL', false],
      [rest(408, 'OperationTimedOut'), 'UNAVAILABLE', true],
      [rest(429, undefined), 'UNAVAILABLE', true],
      [rest(500, 'InternalError'), 'UNAVAILABLE', true],
      [rest(502, undefined), 'UNAVAILABLE', true],
      [rest(503, 'ServerBusy'), 'UNAVAILABLE', true],
      [rest(504, undefined), 'UNAVAILABLE', true],
      [rest(409, 'ContainerBeingDeleted'), 'UNAVAILABLE', true],
      [rest(undefined, 'ECONNRESET', 'socket hang up'), 'UNAVAILABLE', true],
      [rest(undefined, 'ECONNREFUSED'), 'UNAVAILABLE', true],
      [rest(undefined, 'ENOTFOUND'), 'UNAVAILABLE', true],
      [rest(undefined, 'REQUEST_SEND_ERROR'), 'UNAVAILABLE', true],
      [rest(undefined, 'SELF_SIGNED_CERT_IN_CHAIN'), 'UNAVAILABLE', false],
      [rest(undefined, 'ERR_TLS_CERT_ALTNAME_INVALID'), 'UNAVAILABLE', false],
      [Object.assign(new Error('The operation was aborted.'), { name: 'AbortError' }), 'CANCELLED', false],
      [new TypeError('boom'), 'INTERNAL', false],
    ];
    for (const [error, code, retryable] of cases) {
      const mapped = mapAzureError(error, context);
      const label = `${(error as { code?: string }).code ?? (error as Error).name} ${(error as { statusCode?: number }).statusCode ?? ''}`;
      assert.equal(mapped.error.code, code, label);
      assert.equal(mapped.retryable, retryable, label);
      assert.match(mapped.error.message, /^storage\/azure put "a\/b": /, label);
    }
  });

  it('takes the code from the x-ms-error-code header when the answer has no body (HEAD)', () => {
    const head = Object.assign(new Error(''), { statusCode: 404, response: { headers: { get: (n: string) => (n === 'x-ms-error-code' ? 'ContainerNotFound' : undefined) } } });
    const mapped = mapAzureError(head, context);
    assert.equal(mapped.error.code, 'FAILED_PRECONDITION');
    assert.equal(mapped.azureCode, 'ContainerNotFound');
    assert.match(mapped.error.message, /container "wsd" does not exist at https:\/\/acct\.blob\.core\.windows\.net \(404 ContainerNotFound\)$/);
  });

  it('keeps a SAS signature out of the message and does not keep the SDK error as the cause', () => {
    const leaky = rest(500, 'InternalError', 'failed https://acct.blob.core.windows.net/wsd/a?sv=2024&sig=SECRETSIGNATURE');
    const mapped = mapAzureError(leaky, context);
    assert.ok(!mapped.error.message.includes('SECRETSIGNATURE'), mapped.error.message);
    assert.equal(mapped.error.cause, undefined);
  });
});
