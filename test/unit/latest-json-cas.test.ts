import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { BackupStore, workspacePrefix, type ArchiveTarget } from '../../core/content/backup-store.js';
import { createLogger, type Logger } from '../../core/observability/logger.js';
import type { StorageBackend } from '../../core/storage/storage-backend.js';
import { LocalStorageBackend } from '../../plugins/storage/local/local-storage-backend.js';
import { memoryStorage } from '../kit/fakes.js';
import { tempDir } from '../kit/temp-dir.js';

// Two daemons ("nodes") back up one workspace into one storage root: all instances of a workspace share its backups,
// and a disposal resumed after a restart can finish long after a newer backup from another node. latest.json must
// end at the newest backup, never move back to an older one, and never name an archive that is gone.

const target = (instanceId: string): ArchiveTarget => ({ owner: 'olga', metaId: 'shared-ws', instanceId });
const backupsPrefix = `${workspacePrefix(target('x'))}backups/`;
/** A backup key with a chosen time, in the form `newArchiveKey` makes: `<yyyymmddThhmmssSSSZ>-<nonce>.tar.zst`. */
const keyAt = (time: Date, nonce: string) => `${backupsPrefix}${time.toISOString().replace(/[-:.]/g, '')}-${nonce}.tar.zst`;

function recordingLogger(): Logger & { lines: Array<{ level: string; msg: string; [k: string]: unknown }> } {
  const lines: Array<{ level: string; msg: string }> = [];
  return Object.assign(createLogger({ level: 'debug', sink: { write: (line: string) => lines.push(JSON.parse(line)) } }), { lines });
}

/** A workspace folder whose one file says which backup it became. */
function contentDir(root: string, label: string): string {
  const dir = path.join(root, 'content', label);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'who.txt'), `${label}\n`);
  return dir;
}

async function latestKeyIn(storage: StorageBackend): Promise<string> {
  const { body } = await storage.get({ key: `${backupsPrefix}latest.json` });
  let text = '';
  for await (const chunk of body) text += chunk;
  return JSON.parse(text).object;
}

/** Every manifest in storage names an archive that exists. */
async function assertNoManifestNamesAMissingArchive(storage: StorageBackend): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of storage.list({ prefix: backupsPrefix })) keys.push(o.key);
  const manifests = keys.filter((k) => k.endsWith('.manifest.json'));
  for (const m of manifests) assert.ok(keys.includes(m.replace(/\.manifest\.json$/, '.tar.zst')), `${m} names a missing archive`);
  return manifests.map((m) => m.replace(/\.manifest\.json$/, '.tar.zst'));
}

describe('latest.json by compare-and-swap', () => {
  it('two nodes racing backups of one workspace end at the newest, and a stale older backup arriving last does not move it back', async () => {
    const root = tempDir('wsd-latest-race-');
    const storageRoot = path.join(root, 'storage');
    const nodeA = { storage: new LocalStorageBackend(storageRoot), log: recordingLogger() };
    const nodeB = { storage: new LocalStorageBackend(storageRoot), log: recordingLogger() };
    const storeA = new BackupStore(nodeA.storage, nodeA.log, { keep: 10, maxConcurrent: 3 });
    const storeB = new BackupStore(nodeB.storage, nodeB.log, { keep: 10, maxConcurrent: 3 });

    // Keys with distinct, known times: the race is about the pointer, not about clock resolution.
    const base = Date.now();
    const writes = Array.from({ length: 8 }, (_, i) => ({
      store: i % 2 === 0 ? storeA : storeB,
      key: keyAt(new Date(base + i * 1000), `race${i}`),
      label: `backup-${i}`,
    }));
    // Shuffled start order, all at once.
    const order = [5, 2, 7, 0, 3, 6, 1, 4];
    const manifests = await Promise.all(order.map((i) => writes[i]!).map((w) => w.store.write(target(w.label), contentDir(root, w.label), 'backup', { key: w.key })));
    assert.equal(manifests.length, 8, 'every backup of the race is stored (losing the pointer race is not an error)');
    const newest = writes.at(-1)!.key;
    assert.equal(await latestKeyIn(nodeA.storage), newest);

    // The final backup of a disposal that a restart interrupted, on node A, finishing now with content of an hour ago.
    const staleKey = keyAt(new Date(base - 3600_000), 'stale0');
    const stale = await storeA.write(target('stale'), contentDir(root, 'stale'), 'backup', { key: staleKey });
    assert.equal(stale.object, staleKey);
    assert.equal(await latestKeyIn(nodeB.storage), newest, 'the older backup did not move the pointer back');
    assert.ok(
      nodeA.log.lines.some((l) => l.msg.startsWith('a newer backup is current already') && l.key === staleKey && l.current === newest),
      'the lost race is logged',
    );

    const committed = await assertNoManifestNamesAMissingArchive(nodeA.storage);
    assert.ok(committed.includes(staleKey), 'the older backup stays (retention deals with it)');
    assert.ok(committed.includes(newest));

    // Either node restores the newest content.
    for (const store of [storeA, storeB]) {
      const latest = await store.latestBackup(target('any'));
      assert.equal(latest?.object, newest);
      const dir = path.join(root, `restore-${Math.random().toString(16).slice(2)}`);
      mkdirSync(dir);
      await store.restore(latest!, dir);
      assert.equal(readFileSync(path.join(dir, 'who.txt'), 'utf8'), 'backup-7\n');
    }
  });

  it('an older backup that read latest.json before a newer one committed loses the swap, re-reads and leaves the newer one', async () => {
    const root = tempDir('wsd-latest-interleave-');
    const shared = memoryStorage();
    const olderLog = recordingLogger();
    let newerWrite: Promise<unknown> | undefined;
    const storeNewer = new BackupStore(shared, recordingLogger());
    // Node "older" reads latest.json, then — just before its put — node "newer" commits a whole backup.
    const interleaving: StorageBackend = Object.assign(Object.create(shared) as StorageBackend, {
      put: async (options: Parameters<StorageBackend['put']>[0]) => {
        if (options.key.endsWith('/latest.json') && !newerWrite) {
          newerWrite = storeNewer.write(target('newer'), contentDir(root, 'newer'), 'backup', { key: keyAt(new Date(Date.now() + 60_000), 'newer') });
          await newerWrite;
        }
        return shared.put(options);
      },
    });
    const storeOlder = new BackupStore(interleaving, olderLog);
    const first = await storeOlder.write(target('first'), contentDir(root, 'first'), 'backup', { key: keyAt(new Date(Date.now() - 60_000), 'first') });
    // The first backup of this workspace: its ifNoneMatch create lost to the newer backup's, and it re-read.
    assert.equal(await latestKeyIn(shared), (await newerWrite as { object: string }).object);
    assert.ok(olderLog.lines.some((l) => l.msg.startsWith('latest.json changed meanwhile')), 'the conflict was seen');
    assert.ok(olderLog.lines.some((l) => l.msg.startsWith('a newer backup is current already')));
    assert.ok(shared.objects.has(first.object.replace(/\.tar\.zst$/, '.manifest.json')), 'its manifest stays');
  });

  it('replaces a pointer that is current by ifMatch, and one that does not validate', async () => {
    const root = tempDir('wsd-latest-replace-');
    const storage = memoryStorage();
    const log = recordingLogger();
    const store = new BackupStore(storage, log);
    const first = await store.write(target('a'), contentDir(root, 'a'), 'backup');
    const puts: Array<{ ifMatch?: string; ifNoneMatch?: boolean }> = [];
    const put = storage.put.bind(storage);
    storage.put = async (options) => {
      if (options.key.endsWith('/latest.json')) puts.push({ ...(options.ifMatch ? { ifMatch: options.ifMatch } : {}), ...(options.ifNoneMatch ? { ifNoneMatch: true } : {}) });
      return put(options);
    };
    const etagBefore = (await storage.head({ key: `${backupsPrefix}latest.json` })).etag;
    const second = await store.write(target('b'), contentDir(root, 'b'), 'backup', { key: keyAt(new Date(Date.now() + 1000), 'second') });
    assert.deepEqual(puts, [{ ifMatch: etagBefore }], 'the pointer moved by compare-and-swap on the version read');
    assert.notEqual(second.object, first.object);

    storage.objects.set(`${backupsPrefix}latest.json`, Buffer.from('{"planted": true}'));
    const third = await store.write(target('c'), contentDir(root, 'c'), 'backup', { key: keyAt(new Date(Date.now() + 2000), 'third') });
    assert.equal(await latestKeyIn(storage), third.object);
    assert.ok(log.lines.some((l) => l.msg === 'replacing a latest.json that does not validate'));
  });
});
