import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import { isWsdError } from '../../../core/plugin-api.js';
import { guardLoopback } from '../../../test/kit/loopback-guard.js';
import { startFakeGcs, type FakeGcs } from '../../../test/kit/servers/fake-gcs.js';
import { startFaultProxy, type FaultProxy, type ProxiedRequest, type ProxyDecision } from '../../../test/kit/servers/fault-proxy.js';
import { patternStream, sha256Of } from '../../../test/kit/streams.js';
import { GcsStorageBackend } from './gcs-storage-backend.js';

const guard = guardLoopback();
after(() => assert.deepEqual(guard.violations, [], 'no connection left 127.0.0.1'));

const chunk = 256 * 1024;
const retries = 3;

/** What a request through the proxy is, by the JSON API's URL shapes. */
function kind(request: ProxiedRequest): string {
  const url = new URL(request.url, 'http://x');
  if (url.pathname.startsWith('/upload/')) {
    if (url.searchParams.has('upload_id')) return request.method === 'DELETE' ? 'cancel' : 'chunk';
    return url.searchParams.get('uploadType') === 'resumable' ? 'session' : 'upload';
  }
  if (request.method === 'DELETE') return 'delete';
  if (/\/o\/[^/]+$/.test(url.pathname)) return url.searchParams.get('alt') === 'media' ? 'media' : 'metadata';
  return 'list';
}

const gcsError = (status: number, reason: string, message: string): ProxyDecision => ({
  status,
  body: JSON.stringify({ error: { code: status, message, errors: [{ reason, message, domain: 'global' }] } }),
});
const unavailable = gcsError(503, 'backendError', 'Backend Error');

async function expectCode(promise: Promise<unknown>, code: string): Promise<Error> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => {
    caught = error;
    assert.ok(isWsdError(error), `a WsdError, not ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
  return caught as Error;
}

async function text(stream: AsyncIterable<Buffer>): Promise<string> {
  let out = '';
  for await (const part of stream) out += part.toString();
  return out;
}

describe('storage/gcs retries and faults (fault proxy in front of fake-gcs-server)', () => {
  let gcs: FakeGcs;
  let proxy: FaultProxy;
  let backend: GcsStorageBackend;
  let direct: GcsStorageBackend;
  /** Requests of one test: the proxy's log since the test started. */
  let seen: () => ProxiedRequest[];
  const logged: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> = [];
  const log = {
    debug: (msg: string, fields?: Record<string, unknown>) => logged.push({ level: 'debug', msg, fields }),
    info: (msg: string, fields?: Record<string, unknown>) => logged.push({ level: 'info', msg, fields }),
    warn: (msg: string, fields?: Record<string, unknown>) => logged.push({ level: 'warn', msg, fields }),
    error: (msg: string, fields?: Record<string, unknown>) => logged.push({ level: 'error', msg, fields }),
    child: () => log,
  };

  /** The next `n` requests of `kinds` get `decision`; everything else is forwarded. */
  const failNext = (n: number, kinds: string[], decision: ProxyDecision) => {
    let left = n;
    proxy.setRule((request) => {
      if (left > 0 && kinds.includes(kind(request))) {
        left--;
        return decision;
      }
      return 'forward';
    });
  };

  before(async () => {
    gcs = await startFakeGcs({ backend: 'memory' });
    proxy = await startFaultProxy(gcs.server.endpoint);
    backend = new GcsStorageBackend({ ...gcs.storageConfig, endpoint: proxy.endpoint, chunkSize: chunk, retries, retryDelayMs: 10, log });
    direct = new GcsStorageBackend({ ...gcs.storageConfig, chunkSize: chunk, retries, retryDelayMs: 10 });
    await backend.start();
    await direct.start();
  });
  after(async () => {
    await backend?.stop();
    await direct?.stop();
    await proxy?.close();
    await gcs?.server.stop();
  });
  beforeEach(() => {
    proxy.setRule(() => 'forward');
    const from = proxy.requests.length;
    seen = () => proxy.requests.slice(from);
  });

  it('retries transient failures (503, 429, a reset) of every operation and then succeeds', async () => {
    failNext(2, ['upload'], unavailable);
    const { etag } = await backend.put({ key: 'retry/a', body: Buffer.from('content') });
    assert.equal(seen().filter((r) => kind(r) === 'upload').length, 3, 'two failed tries and one that worked');
    assert.deepEqual(
      logged.filter((l) => l.level === 'warn').map((l) => [l.msg, l.fields?.attempt, l.fields?.error]),
      [1, 2].map((attempt) => ['request failed transiently; retrying', attempt, 'storage/gcs: HTTP 503 backendError: Backend Error']),
    );

    failNext(1, ['metadata'], gcsError(429, 'rateLimitExceeded', 'slow down'));
    assert.equal((await backend.head({ key: 'retry/a' })).etag, etag);

    failNext(2, ['metadata', 'media'], 'reset');
    assert.equal(await text((await backend.get({ key: 'retry/a' })).body), 'content');

    failNext(1, ['list'], unavailable);
    const listed = [];
    for await (const o of backend.list({ prefix: 'retry/' })) listed.push(o.key);
    assert.deepEqual(listed, ['retry/a']);

    failNext(1, ['delete'], gcsError(500, 'internalError', 'oops'));
    await backend.delete({ key: 'retry/a' });
    await expectCode(direct.head({ key: 'retry/a' }), 'NOT_FOUND');
  });

  it('does not retry a permanent refusal (403), and reports the service reason', async () => {
    failNext(10, ['upload', 'metadata'], gcsError(403, 'forbidden', 'wsd@p.iam.gserviceaccount.com does not have storage.objects.create access'));
    const error = await expectCode(backend.put({ key: 'denied/a', body: Buffer.from('x') }), 'PERMISSION_DENIED');
    assert.match(error.message, /storage\/gcs: put "denied\/a": HTTP 403 forbidden: .*storage\.objects\.create/);
    await expectCode(backend.head({ key: 'denied/a' }), 'PERMISSION_DENIED');
    assert.deepEqual(seen().map(kind), ['upload', 'metadata'], 'one request each, no retry');
  });

  it('gives up after the configured retries with UNAVAILABLE', async () => {
    proxy.setRule(() => unavailable);
    const error = await expectCode(backend.head({ key: 'down/a' }), 'UNAVAILABLE');
    assert.match(error.message, /HTTP 503 backendError/);
    assert.equal(seen().length, retries + 1);
  });

  it('reports a conditional put whose answer was lost as the success it was (ifNoneMatch, ifMatch, one request and resumable)', async () => {
    /** The final request of the next put reaches the server and takes effect, but its answer never arrives. */
    const dropFinalAnswerOnce = (size: number) => {
      let dropped = false;
      proxy.setRule((request) => {
        const final = kind(request) === 'upload' || (kind(request) === 'chunk' && String(request.headers['content-range']).endsWith(`/${size}`));
        if (!final || dropped) return 'forward';
        dropped = true;
        return 'drop-answer';
      });
      return () => dropped;
    };
    for (const size of [10, 3 * chunk + 5]) {
      const key = `lost-answer/${size}`;
      // The retry is refused (412) by the object the first try made, or finds the session finished; the put id
      // in the object's metadata says it was this put.
      let dropped = dropFinalAnswerOnce(size);
      const created = await backend.put({ key, body: patternStream(size, 1), ifNoneMatch: true });
      assert.ok(dropped(), 'an answer was dropped');
      assert.equal((await direct.head({ key })).etag, created.etag);

      dropped = dropFinalAnswerOnce(size);
      const replaced = await backend.put({ key, body: patternStream(size, 2), ifMatch: created.etag });
      assert.ok(dropped(), 'an answer was dropped');
      assert.notEqual(replaced.etag, created.etag);
      assert.equal((await direct.head({ key })).etag, replaced.etag);
      assert.deepEqual(await sha256Of((await direct.get({ key })).body), await sha256Of(patternStream(size, 2)));
    }
  });

  it('reports an unknown outcome (UNAVAILABLE), never a refusal it cannot vouch for, when a conditional put retried after a lost answer is refused', async () => {
    const key = 'lost-race/a';
    let first = true;
    proxy.setRule(async (request) => {
      if (kind(request) === 'upload' && first) {
        first = false;
        // Another node creates the key while this request's connection breaks: whether the first attempt landed (and
        // was replaced) cannot be told from here, so the storage contract forbids calling it a refusal.
        await direct.put({ key, body: Buffer.from('the other writer') });
        return 'reset';
      }
      return 'forward';
    });
    await expectCode(backend.put({ key, body: Buffer.from('mine'), ifNoneMatch: true }), 'UNAVAILABLE');
    assert.equal(await text((await direct.get({ key })).body), 'the other writer');
  });

  it('sends a failed chunk again and stores the body exactly once', async () => {
    const key = 'chunk-retry/a';
    let chunks = 0;
    proxy.setRule((request) => (kind(request) === 'chunk' && ++chunks === 2 ? unavailable : 'forward'));
    const size = 3 * chunk + 100;
    const { etag } = await backend.put({ key, body: patternStream(size, 7) });
    const ranges = seen().filter((r) => kind(r) === 'chunk').map((r) => r.headers['content-range']);
    assert.deepEqual(ranges, [`bytes 0-${chunk - 1}/*`, `bytes ${chunk}-${2 * chunk - 1}/*`, `bytes ${chunk}-${2 * chunk - 1}/*`, `bytes ${2 * chunk}-${3 * chunk - 1}/*`, `bytes ${3 * chunk}-${size - 1}/${size}`]);
    const got = await direct.get({ key });
    assert.equal(got.etag, etag);
    assert.deepEqual(await sha256Of(got.body), await sha256Of(patternStream(size, 7)));
  });

  it('removes what fake-gcs-server assembles from a re-sent chunk whose first answer was lost, and fails the put', async () => {
    // Real GCS keeps the bytes it has when a chunk comes again; fake-gcs-server appends them a second time. The
    // stored size and MD5 then differ from the body's: the object is deleted at once and the put fails.
    const key = 'emulator-duplicate/a';
    let chunks = 0;
    proxy.setRule((request) => (kind(request) === 'chunk' && ++chunks === 2 ? 'drop-answer' : 'forward'));
    const error = await expectCode(backend.put({ key, body: patternStream(3 * chunk + 1, 3) }), 'INTERNAL');
    assert.match(error.message, /the service stored \d+ bytes .* for 786433 bytes sent .*; the object was removed/);
    await expectCode(direct.head({ key }), 'NOT_FOUND');
  });

  it('continues a read that breaks midway with a range request for the rest of the same generation', async () => {
    const key = 'broken-read/a';
    const size = 5 * chunk + 3;
    const { etag } = await direct.put({ key, body: patternStream(size, 9) });
    failNext(1, ['media'], { cutAnswerAfter: 300_000 });
    const got = await backend.get({ key });
    assert.deepEqual(await sha256Of(got.body), await sha256Of(patternStream(size, 9)));
    const media = seen().filter((r) => kind(r) === 'media');
    assert.equal(media.length, 2);
    const resumed = new URL(media[1]!.url, 'http://x');
    assert.equal(resumed.searchParams.get('generation'), etag, 'the rest is read from the same generation');
    assert.match(String(media[1]!.headers.range), /^bytes=\d+-\d+$/);
    assert.ok(Number(/bytes=(\d+)/.exec(String(media[1]!.headers.range))![1]) >= 1, 'from where it stopped');
  });

  it('fails a read whose generation was replaced midway instead of mixing versions', async () => {
    const key = 'replaced-read/a';
    await direct.put({ key, body: patternStream(4 * chunk, 1) });
    let cut = false;
    proxy.setRule(async (request) => {
      if (kind(request) === 'media' && !cut) {
        cut = true;
        return { cutAnswerAfter: 100_000 };
      }
      return 'forward';
    });
    const got = await backend.get({ key });
    // Replaced while the first part is being read: the rest of *that* generation no longer exists.
    await direct.put({ key, body: patternStream(4 * chunk, 2) });
    await assert.rejects(sha256Of(got.body), (error: unknown) => {
      assert.ok(isWsdError(error), String(error));
      assert.equal(error.code, 'UNAVAILABLE');
      assert.match(error.message, /replaced or deleted during the read/);
      return true;
    });
  });

  it('cancels the upload session of a put whose body fails or that is aborted, and keeps the old object', async () => {
    const key = 'cancelled/a';
    const old = await direct.put({ key, body: Buffer.from('old') });
    let sent = 0;
    const failing = new Readable({
      read() {
        sent += 64 * 1024;
        if (sent > 3 * chunk) this.destroy(new Error('archiver crashed'));
        else this.push(Buffer.alloc(64 * 1024, 1));
      },
    });
    const error = await expectCode(backend.put({ key, body: failing }), 'INTERNAL');
    assert.match(error.message, /the body failed after \d+ bytes: archiver crashed/);
    assert.ok(seen().some((r) => kind(r) === 'cancel'), 'the session was cancelled');

    const controller = new AbortController();
    let chunks = 0;
    proxy.setRule((request) => {
      if (kind(request) === 'chunk' && ++chunks === 2) controller.abort();
      return 'forward';
    });
    const endless = new Readable({ read() { this.push(Buffer.alloc(64 * 1024, 2)); } });
    await expectCode(backend.put({ key, body: endless, signal: controller.signal }), 'CANCELLED');
    assert.equal(seen().filter((r) => kind(r) === 'cancel').length, 2);
    assert.equal((await direct.head({ key })).etag, old.etag);
    assert.equal(await text((await direct.get({ key })).body), 'old');
  });

  it('lets exactly one of 8 concurrent conditional resumable uploads win, round after round', async () => {
    for (let round = 0; round < 3; round++) {
      const key = `race-resumable/${round}`;
      const base = await direct.put({ key, body: Buffer.from('base') });
      const body = (i: number) => Buffer.concat([Buffer.from(`writer ${i}`), Buffer.alloc(2 * chunk + 11, i)]);
      const outcomes = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => direct.put({ key, body: Readable.from([body(i)]), ifMatch: base.etag })));
      const winners = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []));
      assert.equal(winners.length, 1, `round ${round}: ${JSON.stringify(outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : (o.reason as Error).message)))}`);
      for (const o of outcomes) if (o.status === 'rejected') assert.equal((o.reason as { code?: string }).code, 'FAILED_PRECONDITION');
      const stored = createHash('sha256');
      for await (const part of (await direct.get({ key })).body) stored.update(part as Buffer);
      assert.equal(stored.digest('hex'), createHash('sha256').update(body(winners[0]!)).digest('hex'));

      const created = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => direct.put({ key: `${key}-new`, body: Readable.from([body(i)]), ifNoneMatch: true })));
      assert.equal(created.filter((o) => o.status === 'fulfilled').length, 1);
      for (const o of created) if (o.status === 'rejected') assert.equal((o.reason as { code?: string }).code, 'ALREADY_EXISTS');
    }
  });
});
