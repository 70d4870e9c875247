import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { BackupStore, type ArchiveTarget } from '../../core/content/backup-store.js';
import { ChunkIndex } from '../../core/content/repository/chunk-index.js';
import { PackWriter } from '../../core/content/repository/pack-writer.js';
import { RepositoryLocks } from '../../core/content/repository/repository-locks.js';
import { buildTree } from '../../core/content/repository/tree-builder.js';
import { scanTree } from '../../core/content/repository/tree-scanner.js';
import { createLogger } from '../../core/observability/logger.js';
import type { StorageBackend } from '../../core/storage/storage-backend.js';
import { LocalStorageBackend } from '../../plugins/storage/local/local-storage-backend.js';
import { tempDir } from '../kit/temp-dir.js';
import { treeManifest } from '../kit/tree-hash.js';

const log = createLogger({ level: 'error' });
const target: ArchiveTarget = { owner: 'gina', metaId: 'ws', instanceId: 'ws-i' };

async function keys(storage: StorageBackend, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of storage.list({ prefix })) out.push(o.key);
  return out;
}

function setup(options: { keep?: number } = {}) {
  const root = tempDir('chunk-gc-');
  const storage = new LocalStorageBackend(path.join(root, 'storage'));
  // No grace: the test decides when packs are old enough.
  const store = new BackupStore(storage, log, { cacheDir: path.join(root, 'cache'), keep: options.keep ?? 1, gcGraceMs: 0, gcIntervalMs: 0 });
  const ws = path.join(root, 'ws');
  mkdirSync(ws);
  return { root, storage, store, ws };
}

describe('garbage collection of chunked backups', () => {
  it('deletes packs only the pruned backups used, keeps what the current one needs, and the current one restores', async () => {
    const { root, storage, store, ws } = setup();
    writeFileSync(path.join(ws, 'stays'), randomBytes(600 * 1024));
    writeFileSync(path.join(ws, 'goes'), randomBytes(600 * 1024));
    await store.write(target, ws, 'backup');
    const packsBefore = await keys(storage, 'gina/repo/packs/');
    writeFileSync(path.join(ws, 'goes'), randomBytes(600 * 1024)); // the old content is referenced by nothing after pruning
    const second = await store.write(target, ws, 'backup');
    // keep: 1 pruned the first backup and a collection followed; the first pack also holds "stays", which the
    // current backup reuses, so it must survive.
    const packsAfter = await keys(storage, 'gina/repo/packs/');
    for (const id of second.packs!) assert.ok(packsAfter.includes(`gina/repo/packs/${id}.pack`), `pack ${id} of the current backup kept`);
    assert.ok(packsBefore.every((k) => packsAfter.includes(k)), 'the first pack still holds a chunk the current backup uses');
    const restored = path.join(root, 'restored');
    mkdirSync(restored);
    await store.restore(second, restored);
    assert.deepEqual(await treeManifest(restored), await treeManifest(ws));
  });

  it('deletes a pack no kept backup references', async () => {
    const { storage, store, ws } = setup();
    writeFileSync(path.join(ws, 'a'), randomBytes(600 * 1024));
    const first = await store.write(target, ws, 'backup');
    writeFileSync(path.join(ws, 'a'), randomBytes(600 * 1024));
    const second = await store.write(target, ws, 'backup');
    const remaining = await keys(storage, 'gina/repo/packs/');
    assert.deepEqual(remaining, second.packs!.map((id) => `gina/repo/packs/${id}.pack`));
    assert.ok(!first.packs!.some((id) => remaining.includes(`gina/repo/packs/${id}.pack`)), 'the pruned backup\'s pack is gone');
    // The index no longer offers its chunks: a later backup of the old content stores it again.
    writeFileSync(path.join(ws, 'b'), 'x');
    const third = await store.write(target, ws, 'backup');
    assert.ok(third.packs!.length > 0);
  });

  it('gives way to a backup in flight (a fresh shared lock), and a backup waits for a collection in progress', async () => {
    const { storage, store, ws } = setup({ keep: 5 });
    writeFileSync(path.join(ws, 'a'), randomBytes(600 * 1024));
    await store.write(target, ws, 'backup');
    const shared = await new RepositoryLocks(storage, 'gina').shared();
    assert.equal((await store.collectGarbage('gina')).outcome, 'busy');
    await shared.release();
    assert.equal((await store.collectGarbage('gina')).outcome, 'done');

    const exclusive = await new RepositoryLocks(storage, 'gina').exclusive();
    assert.ok(exclusive);
    let finished = false;
    writeFileSync(path.join(ws, 'b'), 'new');
    const backup = store.write(target, ws, 'backup').then(() => (finished = true));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(finished, false, 'the backup waits while the exclusive lock is held');
    await exclusive.release();
    await backup;
    assert.deepEqual(await keys(storage, 'gina/repo/locks/'), [], 'no lock left behind');
  });

  it('refuses to collect while a manifest cannot be read: it cannot know what that backup references', async () => {
    const { storage, store, ws } = setup({ keep: 5 });
    writeFileSync(path.join(ws, 'a'), randomBytes(600 * 1024));
    await store.write(target, ws, 'backup');
    await storage.put({ key: 'gina/workspaces/other/backups/20200101T000000000Z-00000000.manifest.json', body: Buffer.from('{not json') });
    const packs = await keys(storage, 'gina/repo/packs/');
    assert.equal((await store.collectGarbage('gina')).outcome, 'refused');
    assert.deepEqual(await keys(storage, 'gina/repo/packs/'), packs);
  });
});

describe('chunked backups against a changing workspace and a stale repository', () => {
  it('a stale index entry (its pack gone) makes the next backup store the chunk again, not fail', async () => {
    const { root, storage, store, ws } = setup({ keep: 5 });
    writeFileSync(path.join(ws, 'a'), randomBytes(600 * 1024));
    await store.write(target, ws, 'backup');
    for (const key of await keys(storage, 'gina/repo/packs/')) await storage.delete({ key });
    writeFileSync(path.join(ws, 'b'), 'new'); // "a" is unchanged: the node's cache and the index both still name its chunk
    const next = await store.write(target, ws, 'backup');
    const restored = path.join(root, 'restored');
    mkdirSync(restored);
    await store.restore(next, restored);
    assert.deepEqual(await treeManifest(restored), await treeManifest(ws));
  });

  it('never stores a file reached through a folder swapped for a symlink after the scan', async () => {
    const { root, ws } = setup();
    mkdirSync(path.join(ws, 'a'));
    writeFileSync(path.join(ws, 'a', 'secret'), 'mine');
    const outside = path.join(root, 'outside');
    mkdirSync(outside);
    writeFileSync(path.join(outside, 'secret'), 'not yours');
    const scanned = await scanTree(ws);
    // The workspace user swaps the folder between the scan and the read.
    renameSync(path.join(ws, 'a'), path.join(ws, 'a-old'));
    symlinkSync(outside, path.join(ws, 'a'));
    const storage = new LocalStorageBackend(path.join(root, 'storage2'));
    const built = await buildTree({ root: ws, exclude: [], index: new ChunkIndex(), packs: new PackWriter(storage, 'gina'), level: 1, scanned: Promise.resolve(scanned) });
    assert.equal(built.tree.entries.find((e) => e.path === 'a/secret'), undefined, 'the swapped file is left out');
    assert.ok(built.warnings.some((w) => w.startsWith('a/secret')), built.warnings.join('; '));
  });
});
