import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeStorageBackendConformance } from '../conformance/storage-backend.js';
import { memoryStorage } from '../kit/fakes.js';

// The fake that unit tests use keeps the same contract as the real backends, so code tested against it (the
// latest.json compare-and-swap above all) behaves the same on them. A smaller large object: it lives in memory.
describeStorageBackendConformance('memoryStorage', async () => ({ backend: memoryStorage() }), { largeObjectBytes: 4 * 1024 * 1024 + 7 });

describe('memoryStorage', () => {
  it('gives an object a test planted directly in `objects` a new etag', async () => {
    const storage = memoryStorage();
    const { etag } = await storage.put({ key: 'a/b', body: Buffer.from('put') });
    storage.objects.set('a/b', Buffer.from('planted'));
    const planted = await storage.head({ key: 'a/b' });
    assert.notEqual(planted.etag, etag);
    assert.equal(planted.size, 7);
    await assert.rejects(storage.put({ key: 'a/b', body: Buffer.from('x'), ifMatch: etag }), { code: 'FAILED_PRECONDITION' });
    await storage.put({ key: 'a/b', body: Buffer.from('x'), ifMatch: planted.etag });
  });
});
