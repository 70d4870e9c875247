import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isWsdError } from '../../../core/errors.js';
import { startMinio, type StartedMinio } from '../../../test/kit/servers/minio.js';
import { patternStream, sha256Of } from '../../../test/kit/streams.js';
import type { S3StorageBackend } from './s3-storage-backend.js';
import { s3Backend } from '../../../test/kit/storage-s3/s3-test-setup.js';

const mib = 1024 * 1024;

/** Server-side copy beyond one CopyObject (S3 takes at most 5 GiB in one; here the limit is lowered to 6 MiB). */
describe('storage/s3 server-side copy', { timeout: 300_000 }, () => {
  let minio: StartedMinio;
  let backend: S3StorageBackend;

  before(async () => {
    minio = await startMinio();
    backend = s3Backend(minio, { partSize: '5MiB' }, { maxSingleCopyBytes: 6 * mib, copyPartBytes: 5 * mib });
    await backend.start();
  });
  after(async () => {
    await backend?.stop();
    await minio?.server.stop();
  });

  it('copies a large object part by part (UploadPartCopy) and leaves no upload behind', async () => {
    const size = 12 * mib + 5;
    await backend.put({ key: 'copy/from', body: patternStream(size, 40) });
    await backend.copy({ from: 'copy/from', to: 'copy/to' });
    const copied = await backend.head({ key: 'copy/to' });
    assert.equal(copied.size, size);
    assert.match(copied.etag, /-3$/, 'three copied parts');
    assert.deepEqual(await sha256Of((await backend.get({ key: 'copy/to' })).body), await sha256Of(patternStream(size, 40)));
    assert.deepEqual(await backend.listIncompleteUploads('copy/'), []);
  });

  it('copies small objects in one request, onto themselves as a no-op, and refuses a missing source', async () => {
    await backend.put({ key: 'copy/small', body: Buffer.from('small') });
    await backend.copy({ from: 'copy/small', to: 'copy/small-2' });
    await backend.copy({ from: 'copy/small', to: 'copy/small' });
    assert.equal((await backend.head({ key: 'copy/small-2' })).size, 5);
    await assert.rejects(backend.copy({ from: 'copy/none', to: 'copy/x' }), (error: unknown) => isWsdError(error, 'NOT_FOUND'));
  });
});
