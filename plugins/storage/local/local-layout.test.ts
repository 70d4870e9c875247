import assert from 'node:assert/strict';
import { readdirSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../../../test/kit/temp-dir.js';
import { LocalStorageBackend } from './local-storage-backend.js';

describe('storage/local layout', () => {
  it('stores key segments as folders ending in ~ and the object under its own name', async () => {
    const root = tempDir();
    const backend = new LocalStorageBackend(root);
    await backend.put({ key: 'alice/workspaces/ws-1/backups/latest.json', body: Buffer.from('{}') });
    assert.ok(existsSync(path.join(root, 'alice~', 'workspaces~', 'ws-1~', 'backups~', 'latest.json')));
    await backend.put({ key: 'odd~name/100%', body: Buffer.from('x') });
    assert.ok(existsSync(path.join(root, 'odd%7Ename~', '100%25')));
  });

  it('never lists stray temp files a crash may leave, and prunes empty folders on delete', async () => {
    const root = tempDir();
    const backend = new LocalStorageBackend(root);
    await backend.put({ key: 'a/b/c', body: Buffer.from('x') });
    writeFileSync(path.join(root, 'a~', 'b~', '.~tmp-0123456789abcdef'), 'partial');
    const keys: string[] = [];
    for await (const o of backend.list({ prefix: '' })) keys.push(o.key);
    assert.deepEqual(keys, ['a/b/c']);
    await backend.put({ key: 'z/only', body: Buffer.from('x') });
    await backend.delete({ key: 'z/only' });
    assert.deepEqual(readdirSync(root).sort(), ['a~']);
  });
});
