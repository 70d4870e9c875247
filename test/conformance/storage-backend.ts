import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { isWsdError, type WsdError } from '../../core/errors.js';
import type { StorageBackend } from '../../core/storage/storage-backend.js';
import { patternStream, sha256Of } from '../kit/streams.js';
import { runWithNodeTest, type ConformanceCase, type ConformanceSuite } from './suite.js';

export interface StorageConformanceOptions {
  /** Bytes of the large round trip (default a little over 200 MiB: several multipart parts / resumable chunks). */
  largeObjectBytes?: number;
  /** Keys listed in the many-keys test; more than one page of a typical object store (1000). */
  manyKeys?: number;
}

/**
 * The contract of {@link StorageBackend}, as tests. Every storage plugin — built-in or third-party — runs it against
 * a real server:
 *
 * ```ts
 * describeStorageBackendConformance('local', async () => ({ backend: new LocalStorageBackend(tempDir()) }));
 * ```
 *
 * `setup` runs once; each test works under its own random key prefix, so a shared bucket is fine.
 *
 * Cases named `(optional: <capability>)` check a feature a backend may leave out; they skip with the reason when its
 * `capabilities` do not declare it. Everything else — etags on every read path, ranges, UTF-8 listing order,
 * refusing an undeclared condition — every backend keeps.
 */
export function storageBackendConformance(
  name: string,
  setup: () => Promise<{ backend: StorageBackend; teardown?: () => Promise<void> }>,
  options: StorageConformanceOptions = {},
): ConformanceSuite {
  const largeBytes = options.largeObjectBytes ?? 200 * 1024 * 1024 + 4099;
  const manyKeys = options.manyKeys ?? 1100;

  const cases: ConformanceCase[] = [];
  // Every case moves real data through a real backend: give runners with short defaults (vitest, jest: 5 s) room.
  const it = (caseName: string, run: ConformanceCase['run']) => void cases.push({ name: caseName, run, timeoutMs: 120_000 });
  let backend: StorageBackend;
  let teardown: (() => Promise<void>) | undefined;
  const suite: ConformanceSuite = {
    name: `StorageBackend conformance: ${name}`,
    async setup() {
      ({ backend, teardown } = await setup());
      try {
        await (backend as { start?: () => Promise<void> }).start?.();
      } catch (error) {
        await teardown?.(); // the server setup started must not outlive a backend that could not start
        throw error;
      }
    },
    async teardown() {
      await (backend as { stop?: () => Promise<void> }).stop?.();
      await teardown?.();
    },
    cases,
  };
  {
    const prefix = () => `conformance-${randomBytes(6).toString('hex')}/`;
    const text = async (key: string) => (await readAll((await backend.get({ key })).body)).toString('utf8');

    it('round-trips a stream of unknown length larger than 200 MiB', async () => {
      const key = `${prefix()}large.bin`;
      const expected = await sha256Of(patternStream(largeBytes, 42));
      const { size } = await backend.put({ key, body: patternStream(largeBytes, 42) });
      assert.equal(size, largeBytes);
      const got = await backend.get({ key });
      assert.equal(got.size, largeBytes);
      assert.equal(got.contentLength, largeBytes);
      assert.deepEqual(await sha256Of(got.body), expected);
      assert.equal((await backend.head({ key })).size, largeBytes);
    });

    it('round-trips an empty object and a buffer body', async () => {
      const p = prefix();
      assert.equal((await backend.put({ key: `${p}empty`, body: Readable.from([]) })).size, 0);
      assert.equal((await readAll((await backend.get({ key: `${p}empty` })).body)).length, 0);
      await backend.put({ key: `${p}buf`, body: Buffer.from('hello') });
      assert.equal(await text(`${p}buf`), 'hello');
    });

    it('serves byte ranges', async () => {
      const key = `${prefix()}range.txt`;
      await backend.put({ key, body: Buffer.from('0123456789') });
      const read = async (range: { offset: number; length?: number }) => {
        const got = await backend.get({ key, range });
        assert.equal(got.size, 10, 'size is the whole object');
        const body = (await readAll(got.body)).toString();
        assert.equal(got.contentLength, body.length);
        return body;
      };
      assert.equal(await read({ offset: 2, length: 3 }), '234');
      assert.equal(await read({ offset: 7 }), '789');
      assert.equal(await read({ offset: 8, length: 100 }), '89', 'a range past the end is cut at the end');
      assert.equal(await read({ offset: 0, length: 10 }), '0123456789');
      await assertCode(backend.get({ key, range: { offset: 10 } }), 'INVALID_ARGUMENT');
      await assertCode(backend.get({ key, range: { offset: -1 } }), 'INVALID_ARGUMENT');
    });

    it('reports size and modification time with head', async () => {
      const key = `${prefix()}head.txt`;
      const before = Date.now();
      await backend.put({ key, body: Buffer.from('abcdef') });
      const info = await backend.head({ key });
      assert.equal(info.key, key);
      assert.equal(info.size, 6);
      assert.ok(info.modifiedAt instanceof Date);
      assert.ok(Math.abs(info.modifiedAt.getTime() - before) < 5 * 60_000, 'modifiedAt is about now');
    });

    it('returns NOT_FOUND as a typed error for missing keys', async () => {
      const key = `${prefix()}missing`;
      await assertCode(backend.get({ key }), 'NOT_FOUND');
      await assertCode(backend.head({ key }), 'NOT_FOUND');
    });

    it('lists by prefix, many keys, in byte order', async () => {
      const p = prefix();
      // Names past ASCII on every page: Latin, CJK and a character outside the BMP, so paging tokens and the byte
      // order are checked on the keys users really have.
      const keys = Array.from({ length: manyKeys }, (_, i) => `${p}many/${String(i).padStart(5, '0')}${['', '-é', '-日本', '-\u{1F600}'][i % 4]}`);
      await runLimited(keys, 16, (key) => backend.put({ key, body: Buffer.from(key) }));
      await backend.put({ key: `${p}many-sibling`, body: Buffer.from('x') });
      await backend.put({ key: `${p}other/z`, body: Buffer.from('x') });

      const listed = await collect(backend.list({ prefix: `${p}many/` }));
      assert.deepEqual(listed.map((o) => o.key), keys);
      assert.ok(listed.every((o) => o.size === Buffer.byteLength(o.key)));

      const loose = await collect(backend.list({ prefix: `${p}many` }));
      assert.equal(loose.length, manyKeys + 1, 'a prefix is a string prefix, not a folder');
      assert.equal(loose.at(-1)!.key, keys.at(-1), 'byte order: "-" < "/"');
      assert.equal(loose[0]!.key, `${p}many-sibling`);

      assert.deepEqual(await collect(backend.list({ prefix: `${p}nothing-here/` })), []);
      const partial = await collect(backend.list({ prefix: `${p}many/0000` }));
      assert.equal(partial.length, Math.min(10, manyKeys));
    });

    it('deletes idempotently', async () => {
      const key = `${prefix()}gone.txt`;
      await backend.put({ key, body: Buffer.from('x') });
      await backend.delete({ key });
      await assertCode(backend.head({ key }), 'NOT_FOUND');
      await backend.delete({ key });
      await backend.delete({ key: `${prefix()}never-existed` });
    });

    it('takes concurrent puts to different keys', async () => {
      const p = prefix();
      const keys = Array.from({ length: 12 }, (_, i) => `${p}concurrent/${i}`);
      await Promise.all(keys.map((key, i) => backend.put({ key, body: patternStream(1024 * 1024 + i, i + 1) })));
      for (const [i, key] of keys.entries()) {
        assert.deepEqual(await sha256Of((await backend.get({ key })).body), await sha256Of(patternStream(1024 * 1024 + i, i + 1)));
      }
    });

    it('replaces an object on overwrite', async () => {
      const p = prefix();
      const key = `${p}over.txt`;
      await backend.put({ key, body: Buffer.from('first version, longer') });
      await backend.put({ key, body: Buffer.from('second') });
      assert.equal(await text(key), 'second');
      assert.equal((await backend.head({ key })).size, 6);
      assert.deepEqual((await collect(backend.list({ prefix: p }))).map((o) => o.key), [key]);
    });

    it('stores keys with unicode, spaces, slashes and punctuation', async () => {
      const p = prefix();
      const keys = [
        `${p}ünïcødé/文件 name.txt`,
        `${p}a/b/c/d/e/f/deep`,
        `${p}emoji/🚀 launch`,
        `${p}percent%20and~tilde/x%7E~`,
        `${p}dots/.hidden/..x/...`,
      ];
      for (const key of keys) await backend.put({ key, body: Buffer.from(key) });
      for (const key of keys) assert.equal(await text(key), key);
      const listed = (await collect(backend.list({ prefix: p }))).map((o) => o.key);
      assert.deepEqual(listed, [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    });

    it('keeps a key and a key below it apart', async () => {
      const p = prefix();
      await backend.put({ key: `${p}x`, body: Buffer.from('parent') });
      await backend.put({ key: `${p}x/y`, body: Buffer.from('child') });
      assert.equal(await text(`${p}x`), 'parent');
      assert.equal(await text(`${p}x/y`), 'child');
      await backend.delete({ key: `${p}x` });
      assert.equal(await text(`${p}x/y`), 'child');
    });

    it('refuses invalid keys with INVALID_ARGUMENT', async () => {
      for (const key of ['', '/absolute', 'a//b', 'trailing/', '../up', 'a/./b', 'nul\u0000byte', 'x'.repeat(1025)]) {
        await assertCode(backend.put({ key, body: Buffer.from('x') }), 'INVALID_ARGUMENT', `put ${JSON.stringify(key.slice(0, 20))}`);
      }
      await assertCode(backend.get({ key: '../etc/passwd' }), 'INVALID_ARGUMENT');
    });

    it('keeps the old object when a put fails midway', async () => {
      const key = `${prefix()}atomic.txt`;
      await backend.put({ key, body: Buffer.from('good') });
      const failing = new Readable({
        read() {
          this.push(Buffer.alloc(256 * 1024, 1));
          setImmediate(() => this.destroy(new Error('source broke')));
        },
      });
      await assert.rejects(backend.put({ key, body: failing }));
      assert.equal(await text(key), 'good');
      assert.equal((await collect(backend.list({ prefix: key }))).length, 1, 'no partial object is listed');
    });

    it('keeps the old object when a put is aborted', async () => {
      const key = `${prefix()}aborted.txt`;
      await backend.put({ key, body: Buffer.from('good') });
      const controller = new AbortController();
      const endless = new Readable({
        read() {
          this.push(Buffer.alloc(64 * 1024, 2));
        },
      });
      const put = backend.put({ key, body: endless, signal: controller.signal });
      setTimeout(() => controller.abort(), 50);
      await assertCode(put, 'CANCELLED');
      assert.equal(await text(key), 'good');
    });

    it('gives every version an etag on put, head, get and list, and a new one when the object is replaced', async (t) => {
      const p = prefix();
      const key = `${p}versioned.txt`;
      const first = await backend.put({ key, body: Buffer.from('first') });
      assert.equal(typeof first.etag, 'string');
      assert.ok(first.etag.length > 0, 'put returns an etag');
      assert.equal((await backend.head({ key })).etag, first.etag, 'head names the version put created');
      const got = await backend.get({ key });
      await readAll(got.body);
      assert.equal(got.etag, first.etag, 'get names the version it reads');
      assert.deepEqual((await collect(backend.list({ prefix: p }))).map((o) => [o.key, o.etag]), [[key, first.etag]], 'list carries etags');

      const second = await backend.put({ key, body: Buffer.from('second, longer') });
      assert.notEqual(second.etag, first.etag, 'new bytes, new etag');
      assert.equal((await backend.head({ key })).etag, second.etag);
      assert.equal((await collect(backend.list({ prefix: p })))[0]!.etag, second.etag);

      const same = await backend.put({ key, body: Buffer.from('second, longer') });
      assert.equal((await backend.head({ key })).etag, same.etag);
      // Allowed either way by the contract (S3's single-part ETag is the MD5 of the bytes).
      if (same.etag === second.etag) t.note(`${name}: putting identical bytes keeps the etag`);
    });

    it('stores the whole body whatever sizeHint says', async () => {
      const p = prefix();
      const body = Buffer.alloc(100 * 1024, 7);
      assert.equal((await backend.put({ key: `${p}under`, body, sizeHint: 10 })).size, body.length);
      assert.equal((await backend.head({ key: `${p}under` })).size, body.length);
      assert.equal((await backend.put({ key: `${p}over`, body: Readable.from([body]), sizeHint: 10 * body.length })).size, body.length);
      assert.equal((await backend.head({ key: `${p}over` })).size, body.length);
      await assertCode(backend.put({ key: `${p}bad`, body, sizeHint: -1 }), 'INVALID_ARGUMENT');
    });

    it('refuses ifMatch together with ifNoneMatch, and a condition it does not declare, with INVALID_ARGUMENT', async () => {
      const key = `${prefix()}both.txt`;
      const { etag } = await backend.put({ key, body: Buffer.from('kept') });
      await assertCode(backend.put({ key, body: Buffer.from('x'), ifMatch: etag, ifNoneMatch: true }), 'INVALID_ARGUMENT');
      // An undeclared condition silently ignored would turn a compare-and-swap into a blind overwrite.
      if (!backend.capabilities.conditionalReplace) await assertCode(backend.put({ key, body: Buffer.from('x'), ifMatch: etag }), 'INVALID_ARGUMENT');
      if (!backend.capabilities.conditionalCreate) await assertCode(backend.put({ key: `${key}-new`, body: Buffer.from('x'), ifNoneMatch: true }), 'INVALID_ARGUMENT');
      assert.equal(await text(key), 'kept');
    });

    it('(optional: conditionalCreate) honours ifNoneMatch', async (t) => {
      if (!backend.capabilities.conditionalCreate) t.skip(`${name} does not declare conditionalCreate`);
      const key = `${prefix()}once.txt`;
      const created = await backend.put({ key, body: Buffer.from('first'), ifNoneMatch: true });
      await assertCode(backend.put({ key, body: Buffer.from('second'), ifNoneMatch: true }), 'ALREADY_EXISTS');
      assert.equal(await text(key), 'first');
      assert.equal((await backend.head({ key })).etag, created.etag, 'a refused put leaves the object as it was');
    });

    it('(optional: conditionalCreate) lets exactly one of concurrent ifNoneMatch writers create a key', async (t) => {
      if (!backend.capabilities.conditionalCreate) t.skip(`${name} does not declare conditionalCreate`);
      const p = prefix();
      const key = `${p}race-create.txt`;
      const outcomes = await Promise.allSettled(
        Array.from({ length: concurrentWriters }, (_, i) => backend.put({ key, body: writerBody(i), ifNoneMatch: true })),
      );
      const winner = assertOneWinner(outcomes, 'ALREADY_EXISTS');
      assert.deepEqual(await readAll((await backend.get({ key })).body), writerBody(winner.index), "the winner's bytes are stored");
      assert.equal((await backend.head({ key })).etag, winner.etag);
      assert.deepEqual((await collect(backend.list({ prefix: p }))).map((o) => o.key), [key], 'losers leave nothing behind');
    });

    it('(optional: conditionalReplace) replaces with ifMatch only while the etag is current', async (t) => {
      if (!backend.capabilities.conditionalReplace) t.skip(`${name} does not declare conditionalReplace`);
      const p = prefix();
      const key = `${p}cas.txt`;
      const v1 = await backend.put({ key, body: Buffer.from('v1') });
      const v2 = await backend.put({ key, body: Buffer.from('v2'), ifMatch: v1.etag });
      assert.equal(await text(key), 'v2', 'the current etag lets the put through');
      assert.notEqual(v2.etag, v1.etag);
      await assertCode(backend.put({ key, body: Buffer.from('stale writer'), ifMatch: v1.etag }), 'FAILED_PRECONDITION');
      assert.equal(await text(key), 'v2', 'a stale etag leaves the object unchanged');
      assert.equal((await backend.head({ key })).etag, v2.etag);
      await assertCode(backend.put({ key: `${p}absent.txt`, body: Buffer.from('x'), ifMatch: v2.etag }), 'FAILED_PRECONDITION', 'ifMatch on a missing key');
      await assertCode(backend.head({ key: `${p}absent.txt` }), 'NOT_FOUND');
      await backend.delete({ key });
      await assertCode(backend.put({ key, body: Buffer.from('after delete'), ifMatch: v2.etag }), 'FAILED_PRECONDITION', 'ifMatch after a delete');
      assert.deepEqual((await collect(backend.list({ prefix: p }))).map((o) => o.key), [], 'refused puts leave nothing behind');
    });

    it('(optional: conditionalReplace) lets exactly one of concurrent ifMatch writers on the same etag win', async (t) => {
      if (!backend.capabilities.conditionalReplace) t.skip(`${name} does not declare conditionalReplace`);
      const p = prefix();
      const key = `${p}race-replace.txt`;
      const base = await backend.put({ key, body: Buffer.from('base') });
      const outcomes = await Promise.allSettled(
        Array.from({ length: concurrentWriters }, (_, i) => backend.put({ key, body: writerBody(i), ifMatch: base.etag })),
      );
      const winner = assertOneWinner(outcomes, 'FAILED_PRECONDITION');
      assert.deepEqual(await readAll((await backend.get({ key })).body), writerBody(winner.index), "the winner's bytes are stored");
      assert.equal((await backend.head({ key })).etag, winner.etag);
      assert.deepEqual((await collect(backend.list({ prefix: p }))).map((o) => o.key), [key], 'losers leave nothing behind');
    });

    it('lists in UTF-8 byte order, which differs from UTF-16 order above U+FFFF', async () => {
      const p = prefix();
      // UTF-16 puts U+1F600 (a surrogate pair, 0xD83D…) before U+FF61 and U+E000; UTF-8 puts it after (F0… > EF…, EE…).
      const names = ['\u{1F600}', '\uFF61', '\uE000', 'z', '\u00E9', '\u{10000}', 'Z'];
      for (const n of names) await backend.put({ key: `${p}${n}`, body: Buffer.from(n) });
      const listed = (await collect(backend.list({ prefix: p }))).map((o) => o.key.slice(p.length));
      const utf8 = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      assert.notDeepEqual(utf8, [...names].sort(), 'the keys tell the two orders apart');
      assert.deepEqual(listed, utf8);
      assert.ok(listed.indexOf('\uFF61') < listed.indexOf('\u{1F600}'));
    });

    it('(optional: presign) serves an object at a presigned URL', async (t) => {
      if (!backend.capabilities.presign) t.skip(`${name} does not declare presign`);
      assert.equal(typeof backend.presignGet, 'function', 'capabilities.presign promises presignGet');
      const key = `${prefix()}shared.txt`;
      await backend.put({ key, body: Buffer.from('via url') });
      const response = await fetch(await backend.presignGet!({ key, expiresInSeconds: 300 }));
      assert.equal(response.status, 200);
      assert.equal(await response.text(), 'via url');
    });

    it('(optional: serverSideCopy) copies an object without streaming it through wsd', async (t) => {
      if (!backend.capabilities.serverSideCopy) t.skip(`${name} does not declare serverSideCopy`);
      assert.equal(typeof backend.copy, 'function', 'capabilities.serverSideCopy promises copy');
      const p = prefix();
      await backend.put({ key: `${p}from`, body: Buffer.from('copied bytes') });
      await backend.copy!({ from: `${p}from`, to: `${p}to` });
      assert.equal(await text(`${p}to`), 'copied bytes');
      assert.equal(await text(`${p}from`), 'copied bytes');
      assert.ok((await backend.head({ key: `${p}to` })).etag.length > 0);
      await assertCode(backend.copy!({ from: `${p}missing`, to: `${p}to2` }), 'NOT_FOUND');
    });
  }
  return suite;
}

/** The storage suite under node:test (see {@link storageBackendConformance} for other runners). */
export function describeStorageBackendConformance(...args: Parameters<typeof storageBackendConformance>): void {
  runWithNodeTest(storageBackendConformance(...args));
}

/** Writers in the race cases; enough to overlap on any backend, few enough for a rate-limited bucket. */
const concurrentWriters = 8;

/** A distinct body per racing writer, large enough that the uploads overlap. */
function writerBody(i: number): Buffer {
  return Buffer.concat([Buffer.from(`writer ${i}\n`), Buffer.alloc(64 * 1024, i + 1)]);
}

/** Exactly one put fulfilled and every other one refused with `loserCode`; returns the winner. */
function assertOneWinner(outcomes: PromiseSettledResult<{ etag: string }>[], loserCode: WsdError['code']): { index: number; etag: string } {
  const winners = outcomes.flatMap((o, index) => (o.status === 'fulfilled' ? [{ index, etag: o.value.etag }] : []));
  assert.equal(winners.length, 1, `exactly one writer wins (${winners.length} did)`);
  for (const o of outcomes) {
    if (o.status === 'rejected') {
      assert.ok(isWsdError(o.reason), `a loser gets a WsdError, not ${String(o.reason)}`);
      assert.equal(o.reason.code, loserCode, o.reason.message);
    }
  }
  return winners[0]!;
}

async function assertCode(promise: Promise<unknown>, code: WsdError['code'], message?: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isWsdError(error), `${message ?? 'error'}: expected a WsdError, got ${String(error)}`);
    assert.equal(error.code, code, `${message ?? 'error'}: ${error.message}`);
    return true;
  });
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

async function runLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}
