import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../../../test/kit/temp-dir.js';
import { LocalStorageBackend } from '../../storage/local/local-storage-backend.js';
import { StorageHealthCheck } from './storage-health-check.js';

describe('health/storage', () => {
  it('is ok while storage answers and failing when it cannot', async () => {
    const root = path.join(tempDir(), 'storage');
    const storage = new LocalStorageBackend(root);
    await storage.start();
    const check = new StorageHealthCheck(storage, { critical: true });
    const signal = new AbortController().signal;
    assert.deepEqual(await check.check(signal), { status: 'ok' });
    // Storage root replaced by a file: every request fails the way a broken mount does.
    renameSync(root, `${root}.away`);
    writeFileSync(root, 'not a folder');
    const failing = await check.check(signal);
    assert.equal(failing.status, 'failing');
    assert.match(failing.reason!, /^storage: /);
  });
});
