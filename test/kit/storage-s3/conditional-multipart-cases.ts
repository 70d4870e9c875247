import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { isWsdError } from '../../../core/plugin-api.js';
import { until } from '../polling.js';
import { startFaultProxy, type FaultProxy, type ProxiedRequest } from '../servers/fault-proxy.js';
import { patternStream, sha256Of } from '../streams.js';
import type { S3StorageBackend } from '../../../plugins/storage/s3/s3-storage-backend.js';
import { s3Backend, s3ErrorBody } from './s3-test-setup.js';

const mib = 1024 * 1024;
/** Large enough for two parts of the smallest part size S3 allows. */
const largeBytes = 6 * mib + 123;

/** An S3 server for the cases below: where it is and how to stop it. */
export interface S3TestServer {
  storageConfig: { endpoint: string; bucket: string } & Record<string, unknown>;
  stop(): Promise<void>;
}

/**
 * The trap of issue 9: the minio client's putObject sends If-None-Match with CreateMultipartUpload, but AWS S3 (and
 * versitygw, moto) evaluate conditions on CompleteMultipartUpload — a large conditional put is only protected when
 * the condition is on Complete. These tests watch the requests through a recording proxy and make the condition
 * change *between* initiate and complete, which only a check on Complete catches. Run against MinIO
 * (`s3-conditional-multipart.test.ts`) and versitygw, which checks conditions on Complete only, as AWS does
 * (`s3-versitygw.test.ts`).
 */
export function describeConditionalMultipart(serverName: string, startServer: () => Promise<S3TestServer>): void {
  describe(`storage/s3 conditional puts of multipart size (${serverName})`, { timeout: 300_000 }, () => {
    let s3: S3TestServer;
    let proxy: FaultProxy;
    let backend: S3StorageBackend;
    let n = 0;
    const key = () => `cond-${process.pid}-${++n}/object.bin`;

    before(async () => {
      s3 = await startServer();
      proxy = await startFaultProxy(s3.storageConfig.endpoint);
      backend = s3Backend({ storageConfig: { ...s3.storageConfig, endpoint: proxy.endpoint } }, { partSize: '5MiB', concurrency: 2 });
      await backend.start();
    });
    after(async () => {
      await backend?.stop();
      await proxy?.close();
      await s3?.stop();
    });

    /** Requests the proxy saw for `objectKey` since `from`, as `METHOD kind` plus the condition headers. */
    const requestsFor = (objectKey: string, from: number) =>
      proxy.requests
        .slice(from)
        .filter((r) => decodeURIComponent(new URL(r.url, 'http://x').pathname) === `/${s3.storageConfig.bucket}/${objectKey}`)
        .map(describeRequest);

    it('sends If-None-Match: * on CompleteMultipartUpload, not on the initiating request', async () => {
      const k = key();
      const from = proxy.requests.length;
      const created = await backend.put({ key: k, body: patternStream(largeBytes, 1), ifNoneMatch: true });
      const seen = requestsFor(k, from);
      // Parts go up concurrently: their order is not fixed.
      const inOrder = [seen[0], ...seen.slice(1, -1).sort(), seen.at(-1)];
      assert.deepEqual(inOrder, ['POST initiate', 'PUT part 1', 'PUT part 2', 'POST complete if-none-match=*'], `requests: ${JSON.stringify(seen)}`);
      assert.equal((await backend.head({ key: k })).etag, created.etag);

      const again = proxy.requests.length;
      await assert.rejects(backend.put({ key: k, body: patternStream(largeBytes, 2), ifNoneMatch: true }), codeIs('ALREADY_EXISTS'));
      const refused = requestsFor(k, again);
      assert.ok(refused.includes('POST complete if-none-match=* → 412'), `the refusal came from Complete: ${JSON.stringify(refused)}`);
      assert.equal(refused.at(-1), 'DELETE abort', 'the refused upload is aborted');
      assert.deepEqual(await backend.listIncompleteUploads(k), []);
      assert.deepEqual(await sha256Of((await backend.get({ key: k })).body), await sha256Of(patternStream(largeBytes, 1)));
    });

    it('sends If-Match: "<etag>" on CompleteMultipartUpload', async () => {
      const k = key();
      const base = await backend.put({ key: k, body: Buffer.from('base') });
      const from = proxy.requests.length;
      const replaced = await backend.put({ key: k, body: patternStream(largeBytes, 3), ifMatch: base.etag });
      const seen = requestsFor(k, from);
      assert.equal(seen[0], 'POST initiate');
      assert.equal(seen.at(-1), `POST complete if-match="${base.etag}"`);
      assert.match(replaced.etag, /-2$/, 'the ETag of a two-part upload');
      await assert.rejects(backend.put({ key: k, body: patternStream(largeBytes, 4), ifMatch: base.etag }), codeIs('FAILED_PRECONDITION'));
      await assert.rejects(backend.put({ key: `${k}-absent`, body: patternStream(largeBytes, 4), ifMatch: base.etag }), codeIs('FAILED_PRECONDITION'));
      assert.equal((await backend.head({ key: k })).etag, replaced.etag);
      assert.deepEqual(await backend.listIncompleteUploads(k), []);
    });

    it('refuses an ifNoneMatch put when the key is created after its upload began (the check is on Complete)', async () => {
      const k = key();
      const gate = gatedBody(largeBytes, 5);
      const from = proxy.requests.length;
      const put = backend.put({ key: k, body: gate.body, ifNoneMatch: true });
      // The key did not exist when the upload was initiated: a check at initiation alone would let this put through.
      await until(() => requestsFor(k, from).includes('POST initiate'), 'the upload is initiated');
      const other = await backend.put({ key: k, body: Buffer.from('the other writer') });
      gate.open();
      await assert.rejects(put, codeIs('ALREADY_EXISTS'));
      assert.equal((await readAll((await backend.get({ key: k })).body)).toString(), 'the other writer');
      assert.equal((await backend.head({ key: k })).etag, other.etag);
      assert.deepEqual(await backend.listIncompleteUploads(k), [], 'the refused upload is aborted');
    });

    it('refuses an ifMatch put when the object is replaced after its upload began', async () => {
      const k = key();
      const base = await backend.put({ key: k, body: Buffer.from('base') });
      const gate = gatedBody(largeBytes, 6);
      const from = proxy.requests.length;
      const put = backend.put({ key: k, body: gate.body, ifMatch: base.etag });
      await until(() => requestsFor(k, from).includes('POST initiate'), 'the upload is initiated');
      await backend.put({ key: k, body: Buffer.from('replaced meanwhile') });
      gate.open();
      await assert.rejects(put, codeIs('FAILED_PRECONDITION'));
      assert.equal((await readAll((await backend.get({ key: k })).body)).toString(), 'replaced meanwhile');
      assert.deepEqual(await backend.listIncompleteUploads(k), []);
    });

    it('lets exactly one of concurrent large ifNoneMatch writers create a key, and leaves no upload behind', async () => {
      const k = key();
      const writers = 4;
      const outcomes = await Promise.allSettled(Array.from({ length: writers }, (_, i) => backend.put({ key: k, body: patternStream(largeBytes, 10 + i), ifNoneMatch: true })));
      const winner = oneWinner(outcomes, 'ALREADY_EXISTS');
      assert.deepEqual(await sha256Of((await backend.get({ key: k })).body), await sha256Of(patternStream(largeBytes, 10 + winner.index)));
      assert.equal((await backend.head({ key: k })).etag, winner.etag);
      assert.deepEqual(await backend.listIncompleteUploads(k), []);
    });

    it('lets exactly one of concurrent large ifMatch writers on the same etag win, and leaves no upload behind', async () => {
      const k = key();
      const base = await backend.put({ key: k, body: Buffer.from('base') });
      const writers = 4;
      const outcomes = await Promise.allSettled(
        Array.from({ length: writers }, (_, i) => backend.put({ key: k, body: patternStream(largeBytes, 20 + i), ifMatch: base.etag })),
      );
      const winner = oneWinner(outcomes, 'FAILED_PRECONDITION');
      assert.deepEqual(await sha256Of((await backend.get({ key: k })).body), await sha256Of(patternStream(largeBytes, 20 + winner.index)));
      assert.deepEqual(await backend.listIncompleteUploads(k), []);
    });

    it('settles a conditional Complete whose answer was lost by reading the object: it is ours, so the put succeeded', async () => {
      const k = key();
      let completes = 0;
      proxy.setRule((r) => (r.method === 'POST' && r.url.includes('uploadId=') && r.headers['if-none-match'] === '*' && ++completes === 1 ? 'drop-answer' : 'forward'));
      try {
        const created = await backend.put({ key: k, body: patternStream(largeBytes, 30), ifNoneMatch: true });
        assert.equal(completes, 1, 'Complete was sent once: a conditional commit is not resent after an ambiguous failure');
        assert.equal((await backend.head({ key: k })).etag, created.etag);
      } finally {
        proxy.setRule(() => 'forward');
      }
    });

    it('settles a conditional single PUT whose answer was lost the same way', async () => {
      const k = key();
      let puts = 0;
      proxy.setRule((r) => (r.method === 'PUT' && r.headers['if-none-match'] === '*' && ++puts === 1 ? 'drop-answer' : 'forward'));
      try {
        const created = await backend.put({ key: k, body: Buffer.from('small and conditional'), ifNoneMatch: true });
        assert.equal(puts, 1);
        assert.equal((await backend.head({ key: k })).etag, created.etag);
      } finally {
        proxy.setRule(() => 'forward');
      }
    });

    it('reports UNAVAILABLE, without resending, when a conditional Complete fails ambiguously and the object is not ours', async () => {
      const k = key();
      let completes = 0;
      proxy.setRule((r) =>
        r.method === 'POST' && r.url.includes('uploadId=') && r.headers['if-none-match'] === '*'
          ? (completes++, { status: 500, body: s3ErrorBody('InternalError', 'injected') })
          : 'forward',
      );
      try {
        await assert.rejects(backend.put({ key: k, body: patternStream(largeBytes, 31), ifNoneMatch: true }), (error: unknown) => {
          assert.ok(isWsdError(error, 'UNAVAILABLE'), String(error));
          assert.match(error.message, /unknown/);
          return true;
        });
        assert.equal(completes, 1, 'an ambiguous conditional Complete is not resent');
      } finally {
        proxy.setRule(() => 'forward');
      }
      assert.deepEqual(await backend.listIncompleteUploads(k), [], 'the upload is aborted');
      await assert.rejects(backend.head({ key: k }), codeIs('NOT_FOUND'));
    });

    it('resends a conditional Complete that the server throttled (503: it did not act)', async () => {
      const k = key();
      let completes = 0;
      proxy.setRule((r) =>
        r.method === 'POST' && r.url.includes('uploadId=') && r.headers['if-none-match'] === '*' && ++completes === 1
          ? { status: 503, body: s3ErrorBody('SlowDown', 'injected') }
          : 'forward',
      );
      try {
        await backend.put({ key: k, body: patternStream(largeBytes, 32), ifNoneMatch: true });
        assert.equal(completes, 2);
      } finally {
        proxy.setRule(() => 'forward');
      }
    });
  });
}

function describeRequest(r: ProxiedRequest): string {
  const query = new URL(r.url, 'http://x').searchParams;
  const kind =
    r.method === 'POST' && query.has('uploads')
      ? 'initiate'
      : r.method === 'POST' && query.has('uploadId')
        ? 'complete'
        : r.method === 'PUT' && query.has('partNumber')
          ? `part ${query.get('partNumber')}`
          : r.method === 'DELETE' && query.has('uploadId')
            ? 'abort'
            : 'object';
  const conditions = ['if-none-match', 'if-match'].filter((h) => r.headers[h] !== undefined).map((h) => `${h}=${r.headers[h]}`);
  const refused = r.status !== undefined && r.status >= 400 ? ` → ${r.status}` : '';
  return [`${r.method} ${kind}`, ...conditions].join(' ') + refused;
}

/** A body that yields its first 5 MiB + 1 byte at once and the rest only after `open()`. */
function gatedBody(size: number, seed: number): { body: Readable; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  async function* generate() {
    let sent = 0;
    for await (const chunk of patternStream(size, seed)) {
      if (sent >= 5 * mib + 1) await opened;
      sent += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
  }
  return { body: Readable.from(generate(), { objectMode: false }), open };
}

function oneWinner(outcomes: PromiseSettledResult<{ etag: string }>[], loserCode: string): { index: number; etag: string } {
  const winners = outcomes.flatMap((o, index) => (o.status === 'fulfilled' ? [{ index, etag: o.value.etag }] : []));
  assert.equal(winners.length, 1, `exactly one writer wins: ${outcomes.map((o) => (o.status === 'fulfilled' ? 'won' : String(o.reason))).join('; ')}`);
  for (const o of outcomes) if (o.status === 'rejected') assert.ok(isWsdError(o.reason, loserCode as 'ALREADY_EXISTS'), String(o.reason));
  return winners[0]!;
}

function codeIs(code: string) {
  return (error: unknown) => {
    assert.ok(isWsdError(error), `expected a WsdError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}
