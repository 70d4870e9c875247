import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Storage } from '@google-cloud/storage';
import { guardLoopback } from '../../../test/kit/loopback-guard.js';
import { startFakeGcs, type FakeGcs } from '../../../test/kit/servers/fake-gcs.js';
import { startFaultProxy, type FaultProxy } from '../../../test/kit/servers/fault-proxy.js';
import { patternStream, sha256Of } from '../../../test/kit/streams.js';
import { gcsConfigSchema } from './gcs-config.js';
import { GcsStorageBackend } from './gcs-storage-backend.js';

const guard = guardLoopback();
after(() => assert.deepEqual(guard.violations, [], 'no connection left 127.0.0.1'));

const mib = 1024 * 1024;

/**
 * The known traps of GCS against an emulator (issue 9): `STORAGE_EMULATOR_HOST` alone makes the SDK drop the
 * `/storage/v1` path (metadata reads 404), and resumable uploads in the SDK's usual 8 MiB chunks are 4-8x slower
 * against fake-gcs-server (it re-hashes the whole upload for every chunk) than in 32 MiB chunks.
 */
describe('storage/gcs against an emulator: endpoint and chunk size', () => {
  let gcs: FakeGcs;
  let proxy: FaultProxy;
  const saved = process.env.STORAGE_EMULATOR_HOST;
  before(async () => {
    gcs = await startFakeGcs({ backend: 'memory' });
    proxy = await startFaultProxy(gcs.server.endpoint);
  });
  after(async () => {
    if (saved === undefined) delete process.env.STORAGE_EMULATOR_HOST;
    else process.env.STORAGE_EMULATOR_HOST = saved;
    await proxy?.close();
    await gcs?.server.stop();
  });

  it('shows the trap: the SDK with only STORAGE_EMULATOR_HOST cannot read metadata from fake-gcs-server', async () => {
    process.env.STORAGE_EMULATOR_HOST = gcs.server.endpoint;
    const sdk = new Storage({ projectId: 'wsd-test' });
    const file = sdk.bucket(gcs.bucket).file('trap.txt');
    await new Storage({ projectId: 'wsd-test', apiEndpoint: gcs.server.endpoint }).bucket(gcs.bucket).file('trap.txt').save('x', { resumable: false });
    await assert.rejects(file.getMetadata(), (error: { code?: number }) => error.code === 404);
    delete process.env.STORAGE_EMULATOR_HOST;
  });

  it('uses the configured endpoint with the JSON API paths, whatever STORAGE_EMULATOR_HOST says', async () => {
    process.env.STORAGE_EMULATOR_HOST = 'http://127.0.0.1:1';
    try {
      const backend = new GcsStorageBackend({ ...gcs.storageConfig, endpoint: proxy.endpoint });
      await backend.start();
      await backend.put({ key: 'endpoint/a', body: Buffer.from('x') });
      assert.equal((await backend.head({ key: 'endpoint/a' })).size, 1);
      await backend.stop();
      const paths = proxy.requests.map((r) => new URL(r.url, 'http://x').pathname);
      assert.ok(paths.length >= 3);
      assert.ok(paths.every((p) => p.startsWith('/storage/v1/b/') || p.startsWith('/upload/storage/v1/b/')), paths.join('\n'));
    } finally {
      delete process.env.STORAGE_EMULATOR_HOST;
    }
  });

  it('sends a body up to chunkSize in one request and a larger one in chunks of exactly chunkSize (32 MiB by default)', async () => {
    const { chunkSize } = gcsConfigSchema.parse({ bucket: 'wsd-backups' });
    assert.equal(chunkSize, 32 * mib);
    const backend = new GcsStorageBackend({ ...gcs.storageConfig, endpoint: proxy.endpoint, chunkSize });
    await backend.start();

    let from = proxy.requests.length;
    await backend.put({ key: 'chunks/exactly-one-chunk', body: patternStream(chunkSize, 1) });
    assert.deepEqual(proxy.requests.slice(from).map((r) => `${r.method} ${new URL(r.url, 'http://x').searchParams.get('uploadType')}`), ['POST multipart']);

    from = proxy.requests.length;
    const size = 2 * chunkSize + 12345;
    const { etag } = await backend.put({ key: 'chunks/three', body: patternStream(size, 2) });
    const requests = proxy.requests.slice(from);
    assert.equal(requests[0]!.method, 'POST');
    assert.equal(new URL(requests[0]!.url, 'http://x').searchParams.get('uploadType'), 'resumable');
    assert.deepEqual(
      requests.slice(1).map((r) => [r.method, r.headers['content-range'], r.body.length]),
      [
        ['PUT', `bytes 0-${chunkSize - 1}/*`, chunkSize],
        ['PUT', `bytes ${chunkSize}-${2 * chunkSize - 1}/*`, chunkSize],
        ['PUT', `bytes ${2 * chunkSize}-${size - 1}/${size}`, 12345],
      ],
    );
    const got = await backend.get({ key: 'chunks/three' });
    assert.equal(got.etag, etag);
    assert.deepEqual(await sha256Of(got.body), await sha256Of(patternStream(size, 2)));
    await backend.stop();
  });
});
