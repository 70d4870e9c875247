import assert from 'node:assert/strict';
import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../../../test/kit/temp-dir.js';
import { LocalStorageBackend } from './local-storage-backend.js';

describe('storage/local temp files', () => {
  it('deletes temp files of interrupted puts older than a day at start, and keeps recent ones and objects', async () => {
    const root = tempDir('wsd-local-tmp-');
    const folder = path.join(root, 'owner~', 'workspaces~');
    mkdirSync(folder, { recursive: true });
    const stale = path.join(folder, '.~tmp-0011223344556677');
    const fresh = path.join(folder, '.~tmp-8899aabbccddeeff');
    const object = path.join(folder, 'keep.tar.zst');
    for (const file of [stale, fresh, object]) writeFileSync(file, 'x');
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000);
    utimesSync(stale, twoDaysAgo, twoDaysAgo);
    utimesSync(object, twoDaysAgo, twoDaysAgo);

    const storage = new LocalStorageBackend(root);
    await storage.start();
    assert.equal(await storage.tempFilesCollected, 1);
    assert.equal(existsSync(stale), false);
    assert.equal(existsSync(fresh), true, 'a put that may still be running is left alone');
    assert.equal(existsSync(object), true);
  });
});
