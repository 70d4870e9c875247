import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { fixedChunks } from './fixed-chunks.js';
import { isRetryable, neverSent, toWsdError } from './gcs-errors.js';
import { GcsAuthError, GcsHttpError, GcsTimeoutError } from './gcs-http.js';

async function cut(body: Parameters<typeof fixedChunks>[0], size: number): Promise<Array<[string, boolean]>> {
  const out: Array<[string, boolean]> = [];
  for await (const { data, last } of fixedChunks(body, size)) out.push([data.toString(), last]);
  return out;
}

describe('storage/gcs: cutting a body into chunks', () => {
  it('yields chunks of exactly the size, marks the last, and handles empty and exact-multiple bodies', async () => {
    assert.deepEqual(await cut(Readable.from(['ab', 'cdefg', 'h']), 3), [['abc', false], ['def', false], ['gh', true]]);
    assert.deepEqual(await cut(Readable.from(['abcdef']), 3), [['abc', false], ['def', true]], 'an exact multiple has no empty chunk');
    assert.deepEqual(await cut(Readable.from([]), 3), [['', true]], 'an empty body is one empty last chunk');
    assert.deepEqual(await cut(Readable.from([Buffer.alloc(0), 'a', Buffer.alloc(0)]), 3), [['a', true]]);
    assert.deepEqual(await cut(Buffer.from('abcdefg'), 3), [['abc', false], ['def', false], ['g', true]]);
    assert.deepEqual(await cut(Buffer.from('abc'), 3), [['abc', true]]);
    assert.deepEqual(await cut(new Uint8Array(0), 3), [['', true]]);
  });

  it('ends the source when the consumer stops early', async () => {
    const source = Readable.from(['abc', 'def', 'ghi']);
    for await (const _ of fixedChunks(source, 3)) break;
    assert.ok(source.destroyed);
  });
});

describe('storage/gcs: error mapping', () => {
  const http = (status: number, reason?: string) => new GcsHttpError(status, reason, 'text');
  const net = (code: string) => Object.assign(new Error(code), { code });

  it('maps HTTP answers to the closed set, retrying only the transient ones', () => {
    const cases: Array<[Error, string, boolean]> = [
      [http(401, 'authError'), 'PERMISSION_DENIED', false],
      [http(403, 'forbidden'), 'PERMISSION_DENIED', false],
      [http(403, 'rateLimitExceeded'), 'UNAVAILABLE', true],
      [http(404, 'notFound'), 'NOT_FOUND', false],
      [http(409, 'conflict'), 'ALREADY_EXISTS', false],
      [http(412, 'conditionNotMet'), 'FAILED_PRECONDITION', false],
      [http(400, 'invalid'), 'INVALID_ARGUMENT', false],
      [http(408), 'UNAVAILABLE', true],
      [http(429, 'rateLimitExceeded'), 'UNAVAILABLE', true],
      [http(500), 'UNAVAILABLE', true],
      [http(503, 'backendError'), 'UNAVAILABLE', true],
      [http(501), 'INTERNAL', false],
      [http(302), 'INTERNAL', false],
    ];
    for (const [error, code, retry] of cases) {
      assert.equal(toWsdError(error, 'x').code, code, `${(error as GcsHttpError).status} ${(error as GcsHttpError).reason}`);
      assert.equal(isRetryable(error), retry, `${(error as GcsHttpError).status} retryable`);
    }
  });

  it('maps network, timeout, TLS, auth and abort failures', () => {
    for (const code of ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN']) {
      assert.equal(toWsdError(net(code), 'x').code, 'UNAVAILABLE');
      assert.ok(isRetryable(net(code)), code);
    }
    assert.ok(neverSent(net('ECONNREFUSED')));
    assert.ok(!neverSent(net('ECONNRESET')), 'a reset may come after the request was sent');
    assert.ok(isRetryable(new GcsTimeoutError('idle')));
    const tls = toWsdError(net('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 'x');
    assert.equal(tls.code, 'UNAVAILABLE');
    assert.match(tls.message, /caFile/);
    assert.ok(!isRetryable(net('UNABLE_TO_VERIFY_LEAF_SIGNATURE')));
    const refused = new GcsAuthError({ message: 'bad', response: { status: 400, data: { error: 'invalid_grant', error_description: 'Invalid JWT' } } });
    assert.equal(toWsdError(refused, 'x').code, 'PERMISSION_DENIED');
    assert.match(toWsdError(refused, 'x').message, /invalid_grant: Invalid JWT/);
    assert.ok(!isRetryable(refused));
    const tokenServiceDown = new GcsAuthError(net('ECONNREFUSED'));
    assert.equal(toWsdError(tokenServiceDown, 'x').code, 'UNAVAILABLE');
    assert.ok(isRetryable(tokenServiceDown));
    assert.equal(toWsdError(new DOMException('stop', 'AbortError'), 'x').code, 'CANCELLED');
    assert.equal(toWsdError(new Error('what'), 'x').code, 'INTERNAL');
  });
});
