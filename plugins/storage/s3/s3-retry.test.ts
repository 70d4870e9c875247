import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isWsdError } from '../../../core/errors.js';
import { startFaultProxy, type FaultProxy, type ProxiedRequest, type ProxyDecision } from '../../../test/kit/servers/fault-proxy.js';
import { startMinio, type StartedMinio } from '../../../test/kit/servers/minio.js';
import { patternStream, sha256Of } from '../../../test/kit/streams.js';
import type { S3StorageBackend } from './s3-storage-backend.js';
import { s3Backend, s3ErrorBody } from '../../../test/kit/storage-s3/s3-test-setup.js';

const mib = 1024 * 1024;

/** Transient failures are retried with backoff, permanent ones are not; a broken download resumes. */
describe('storage/s3 retries', { timeout: 300_000 }, () => {
  let minio: StartedMinio;
  let proxy: FaultProxy;
  let backend: S3StorageBackend;
  let n = 0;
  const key = () => `retry-${process.pid}-${++n}/object`;
  /** Requests for one object key (any query). */
  const forKey = (k: string) => (r: ProxiedRequest) => decodeURIComponent(new URL(r.url, 'http://x').pathname) === `/${minio.storageConfig.bucket}/${k}`;
  const countFor = (k: string, method: string) => proxy.requests.filter((r) => forKey(k)(r) && r.method === method).length;

  before(async () => {
    minio = await startMinio();
    proxy = await startFaultProxy(minio.server.endpoint);
    backend = s3Backend({ storageConfig: { ...minio.storageConfig, endpoint: proxy.endpoint } }, { partSize: '5MiB', retry: { attempts: 4, initialDelay: '20ms', maxDelay: '200ms' } });
    await backend.start();
  });
  after(async () => {
    await backend?.stop();
    await proxy?.close();
    await minio?.server.stop();
  });

  /** Applies `action` to the first `times` requests that `match`, forwards everything else. */
  const failFirst = (times: number, match: (r: ProxiedRequest) => boolean, action: ProxyDecision) => {
    let left = times;
    proxy.setRule((r) => (match(r) && left-- > 0 ? action : 'forward'));
  };

  it('retries requests the server throttles (503 SlowDown) and then succeeds', async () => {
    const k = key();
    await backend.put({ key: k, body: Buffer.from('hello') });
    failFirst(2, (r) => forKey(k)(r) && r.method === 'GET', { status: 503, body: s3ErrorBody('SlowDown', 'Please reduce your request rate.') });
    const before = countFor(k, 'GET');
    const got = await backend.get({ key: k });
    assert.equal((await readAll(got.body)).toString(), 'hello');
    assert.equal(countFor(k, 'GET') - before, 3, 'two refused tries and the good one');
    proxy.setRule(() => 'forward');
  });

  it('retries a put whose connection is reset and a listing answered with 500', async () => {
    const k = key();
    failFirst(1, (r) => forKey(k)(r) && r.method === 'PUT', 'reset');
    await backend.put({ key: k, body: Buffer.from('after a reset') });
    assert.equal(countFor(k, 'PUT'), 2);
    failFirst(1, (r) => r.method === 'GET' && r.url.includes('list-type=2'), { status: 500, body: s3ErrorBody('InternalError', 'injected') });
    const listed = [];
    for await (const o of backend.list({ prefix: k })) listed.push(o.key);
    assert.deepEqual(listed, [k]);
    proxy.setRule(() => 'forward');
  });

  it('retries a failed part of a multipart upload, not the whole upload', async () => {
    const k = key();
    failFirst(1, (r) => forKey(k)(r) && r.method === 'PUT' && r.url.includes('partNumber=2'), { status: 503, body: s3ErrorBody('SlowDown', 'injected') });
    const size = 11 * mib;
    await backend.put({ key: k, body: patternStream(size, 7) });
    proxy.setRule(() => 'forward');
    const parts = proxy.requests.filter((r) => forKey(k)(r) && r.method === 'PUT').map((r) => new URL(r.url, 'http://x').searchParams.get('partNumber'));
    // Parts go up concurrently: only the multiset is fixed.
    assert.deepEqual(parts.sort(), ['1', '2', '2', '3'], 'part 2 twice, the others once');
    assert.deepEqual(await sha256Of((await backend.get({ key: k })).body), await sha256Of(patternStream(size, 7)));
  });

  it('does not retry a permanent refusal (403) and reports PERMISSION_DENIED with the service reason', async () => {
    const k = key();
    proxy.setRule((r) => (forKey(k)(r) ? { status: 403, body: s3ErrorBody('AccessDenied', 'Access Denied.') } : 'forward'));
    const before = proxy.requests.length;
    await assert.rejects(backend.get({ key: k }), (error: unknown) => {
      assert.ok(isWsdError(error, 'PERMISSION_DENIED'), String(error));
      assert.match(error.message, /^storage\/s3: get .* 403 AccessDenied: Access Denied\./);
      return true;
    });
    assert.equal(proxy.requests.length - before, 1, 'exactly one request');
    proxy.setRule(() => 'forward');
  });

  it('gives up after retry.attempts tries and reports UNAVAILABLE', async () => {
    const k = key();
    proxy.setRule((r) => (forKey(k)(r) ? { status: 503, body: s3ErrorBody('SlowDown', 'still busy') } : 'forward'));
    const before = proxy.requests.length;
    await assert.rejects(backend.head({ key: k }), (error: unknown) => {
      assert.ok(isWsdError(error, 'UNAVAILABLE'), String(error));
      assert.match(error.message, /503 SlowDown.*after 4 tries/);
      return true;
    });
    assert.equal(proxy.requests.length - before, 4);
    proxy.setRule(() => 'forward');
  });

  it('resumes a download that breaks midway from the next byte, pinned to the version it started on', async () => {
    const k = key();
    const size = 3 * mib + 17;
    const { etag } = await backend.put({ key: k, body: patternStream(size, 9) });
    failFirst(1, (r) => forKey(k)(r) && r.method === 'GET', { cutAnswerAfter: mib });
    const before = proxy.requests.length;
    const got = await backend.get({ key: k });
    assert.deepEqual(await sha256Of(got.body), await sha256Of(patternStream(size, 9)));
    proxy.setRule(() => 'forward');
    const gets = proxy.requests.slice(before).filter((r) => forKey(k)(r) && r.method === 'GET');
    assert.equal(gets.length, 2);
    assert.match(String(gets[1]!.headers.range), /^bytes=\d+-\d+$/);
    assert.ok(Number(/^bytes=(\d+)-/.exec(String(gets[1]!.headers.range))![1]) >= mib - 64 * 1024, 'the resume does not start over');
    assert.equal(gets[1]!.headers['if-match'], `"${etag}"`);
  });

  it('resumes a ranged download within its range', async () => {
    const k = key();
    const size = 3 * mib;
    await backend.put({ key: k, body: patternStream(size, 11) });
    failFirst(1, (r) => forKey(k)(r) && r.method === 'GET', { cutAnswerAfter: 512 * 1024 });
    const got = await backend.get({ key: k, range: { offset: 1000, length: 2 * mib } });
    assert.equal(got.contentLength, 2 * mib);
    const whole = await readAll(patternStream(size, 11));
    assert.ok((await readAll(got.body)).equals(whole.subarray(1000, 1000 + 2 * mib)));
    proxy.setRule(() => 'forward');
  });

  it('fails a download with UNAVAILABLE rather than mix two versions when the object is replaced before a resume', async () => {
    const k = key();
    const size = 2 * mib;
    await backend.put({ key: k, body: patternStream(size, 12) });
    let replaced = false;
    proxy.setRule((r) => {
      if (!forKey(k)(r) || r.method !== 'GET') return 'forward';
      return replaced ? 'forward' : { cutAnswerAfter: 256 * 1024 };
    });
    const got = await backend.get({ key: k });
    await backend.put({ key: k, body: patternStream(size, 13) });
    replaced = true;
    await assert.rejects(readAll(got.body), (error: unknown) => {
      assert.ok(isWsdError(error, 'UNAVAILABLE'), String(error));
      assert.match(error.message, /replaced while it was read/);
      return true;
    });
    proxy.setRule(() => 'forward');
  });
});

async function readAll(stream: AsyncIterable<Buffer | Uint8Array | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}
