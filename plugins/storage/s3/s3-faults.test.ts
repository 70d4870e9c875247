import assert from 'node:assert/strict';
import { Readable, Transform } from 'node:stream';
import { describe, it } from 'node:test';
import { isWsdError } from '../../../core/errors.js';
import { until } from '../../../test/kit/polling.js';
import { startMinio } from '../../../test/kit/servers/minio.js';
import { patternStream } from '../../../test/kit/streams.js';
import { s3Backend } from '../../../test/kit/storage-s3/s3-test-setup.js';

const mib = 1024 * 1024;

/** Short retries, so a dead server is reported in about a second. */
const impatient = { partSize: '5MiB', concurrency: 2, requestTimeout: '10s', retry: { attempts: 3, initialDelay: '100ms', maxDelay: '400ms' } };

describe('storage/s3 faults', { timeout: 300_000 }, () => {
  it('fails a put with UNAVAILABLE when the server dies mid-upload; once it is back the old object is intact and the upload is aborted', async () => {
    const minio = await startMinio();
    const backend = s3Backend(minio, impatient);
    let server = minio.server;
    try {
      await backend.start();
      const key = 'fault/backup.tar.zst';
      await backend.put({ key, body: Buffer.from('previous version') });
      let read = 0;
      const put = backend.put({ key, body: counted(patternStream(200 * mib, 3), (n) => (read += n)) });
      put.catch(() => {});
      await until(async () => read > 12 * mib && (await backend.listIncompleteUploads(key)).length > 0, 'parts of the upload are on their way', 30_000);
      await server.kill();
      await assert.rejects(put, (error: unknown) => {
        assert.ok(isWsdError(error, 'UNAVAILABLE'), String(error));
        assert.match(error.message, /^storage\/s3: put fault\/backup\.tar\.zst.*(ECONNREFUSED|ECONNRESET|socket hang up)/);
        return true;
      });

      server = await minio.restart();
      assert.equal((await readAll((await backend.get({ key })).body)).toString(), 'previous version', 'the previous version is intact');
      // The abort could not reach the dead server; the backend keeps trying in the background and gets through now.
      await until(async () => (await backend.listIncompleteUploads()).length === 0, 'no multipart upload remains', 60_000);
      const listed = [];
      for await (const o of backend.list({ prefix: 'fault/' })) listed.push(o.key);
      assert.deepEqual(listed, [key], 'no half object');
    } finally {
      await backend.stop();
      await server.stop();
    }
  });

  it('fails a get whose server dies mid-transfer with UNAVAILABLE', async () => {
    const minio = await startMinio();
    const backend = s3Backend(minio, impatient);
    try {
      await backend.start();
      await backend.put({ key: 'fault/big', body: patternStream(24 * mib, 4) });
      const got = await backend.get({ key: 'fault/big' });
      const iterator = (got.body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      await iterator.next();
      await minio.server.kill();
      await assert.rejects(
        (async () => {
          for (let next = await iterator.next(); !next.done; next = await iterator.next());
        })(),
        (error: unknown) => {
          assert.ok(isWsdError(error, 'UNAVAILABLE'), String(error));
          assert.match(error.message, /get fault\/big/);
          return true;
        },
      );
    } finally {
      await backend.stop();
      await minio.server.stop();
    }
  });

  it('aborts the multipart upload of a cancelled put and of a put whose body fails', async () => {
    const minio = await startMinio();
    const backend = s3Backend(minio, impatient);
    try {
      await backend.start();
      const key = 'fault/cancelled';
      await backend.put({ key, body: Buffer.from('kept') });
      const controller = new AbortController();
      const endless = new Readable({
        read() {
          this.push(Buffer.alloc(256 * 1024, 5));
        },
      });
      const put = backend.put({ key, body: endless, signal: controller.signal });
      put.catch(() => {});
      await until(async () => (await backend.listIncompleteUploads(key)).length > 0, 'the upload began');
      controller.abort();
      await assert.rejects(put, (error: unknown) => isWsdError(error, 'CANCELLED'));
      assert.deepEqual(await backend.listIncompleteUploads(key), [], 'aborted before the put returned');
      assert.ok(endless.destroyed, 'the body stream is destroyed');

      let sent = 0;
      const failing = new Readable({
        read() {
          sent += 256 * 1024;
          if (sent > 12 * mib) this.destroy(new Error('disk read error'));
          else this.push(Buffer.alloc(256 * 1024, 6));
        },
      });
      await assert.rejects(backend.put({ key, body: failing }), (error: unknown) => {
        assert.ok(isWsdError(error), String(error));
        assert.match(error.message, /the body failed: disk read error/);
        return true;
      });
      assert.deepEqual(await backend.listIncompleteUploads(key), []);
      assert.equal((await readAll((await backend.get({ key })).body)).toString(), 'kept');
    } finally {
      await backend.stop();
      await minio.server.stop();
    }
  });

  it('aborts, at start, uploads under its prefix that a crashed daemon left behind', async () => {
    const minio = await startMinio();
    const client = minio.client();
    const { bucket } = minio.storageConfig;
    await client.initiateNewMultipartUpload(bucket, 'tenant-a/workspaces/ws/backups/abandoned.tar.zst', {});
    await client.initiateNewMultipartUpload(bucket, 'tenant-b/not-ours.tar.zst', {});
    // Uploads begun before this instant count as abandoned (MinIO stamps them with whole seconds or finer).
    const backend = s3Backend(minio, { prefix: 'tenant-a/', abortUploadsOlderThan: 0.001 });
    try {
      await until(async () => Date.now() - 5 > Math.max(...(await uploadTimes(minio, bucket))), 'the uploads are in the past');
      await backend.start();
      assert.equal(await backend.abandonedUploadsAborted, 1);
      assert.deepEqual(await backend.listIncompleteUploads(), []);
      const remaining = await uploadKeys(minio, bucket);
      assert.deepEqual(remaining, ['tenant-b/not-ours.tar.zst'], 'uploads outside the prefix are left alone');
    } finally {
      await backend.stop();
      await minio.server.stop();
    }
  });
});

async function uploadTimes(minio: Awaited<ReturnType<typeof startMinio>>, bucket: string): Promise<number[]> {
  const result = await minio.client().listIncompleteUploadsQuery(bucket, '', '', '', '');
  return result.uploads.map((u) => new Date(u.initiated).getTime());
}

async function uploadKeys(minio: Awaited<ReturnType<typeof startMinio>>, bucket: string): Promise<string[]> {
  const result = await minio.client().listIncompleteUploadsQuery(bucket, '', '', '', '');
  return result.uploads.map((u) => u.key);
}

/** `stream` passed through, calling `onBytes` as bytes are read from it. */
function counted(stream: Readable, onBytes: (n: number) => void): Readable {
  return stream.pipe(
    new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        onBytes(chunk.length);
        callback(null, chunk);
      },
    }),
  );
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}
