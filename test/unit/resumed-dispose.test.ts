import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { BackupStore } from '../../core/content/backup-store.js';
import { InitializerRegistry } from '../../core/initializer/initializer-registry.js';
import { silentLogger } from '../../core/observability/logger.js';
import { WorkspaceService } from '../../core/workspace/workspace-service.js';
import { EmptyContentInitializer } from '../../plugins/initializer/empty/empty-content-initializer.js';
import { memoryStorage, recordingQuota } from '../kit/fakes.js';
import { tempDir } from '../kit/temp-dir.js';

/** A node whose daemon "restarts": a second WorkspaceService on the same folders and storage. */
function node() {
  const root = tempDir('wsd-resumed-dispose-');
  const storage = memoryStorage();
  const backups = new BackupStore(storage, silentLogger);
  const service = () =>
    new WorkspaceService({
      workingArea: path.join(root, 'workspaces'),
      stateDir: path.join(root, 'state'),
      storage,
      quota: recordingQuota(),
      initializers: new InitializerRegistry([new EmptyContentInitializer()]),
      backups,
      log: silentLogger,
    });
  const stateFile = (id: string) => path.join(root, 'state', `${id}.json`);
  return { root, storage, backups, service, stateFile };
}

const request = { id: 'ws', owner: 'alice', metaId: 'm', initializer: { kind: 'empty', spec: {} }, remoteStorageDisabled: false, storageQuotaBytes: 0 };

describe('a dispose resumed after a restart', () => {
  it('stores its final backup under the key chosen when the dispose started', async () => {
    const n = node();
    const first = n.service();
    await first.recover();
    await first.init(request);
    writeFileSync(path.join(first.describe('ws').folder, 'work.txt'), 'work\n');
    await first.stop();
    // What a crash right after the dispose started leaves: the key chosen, nothing stored yet.
    const key = n.backups.newArchiveKey({ owner: 'alice', metaId: 'm' }, 'backup');
    const record = JSON.parse(readFileSync(n.stateFile('ws'), 'utf8'));
    writeFileSync(n.stateFile('ws'), JSON.stringify({ ...record, state: 'disposing', dispose: { backup: true, finalBackupDone: false, archiveKey: key } }));

    const second = n.service();
    await second.recover();
    await second.dispose('ws', { backup: true });
    assert.equal((await n.backups.latestBackup({ owner: 'alice', metaId: 'm' }))?.object, key);
    await second.stop();
  });

  it('does not store a backup again that was committed before the restart', async () => {
    const n = node();
    const first = n.service();
    await first.recover();
    await first.init(request);
    writeFileSync(path.join(first.describe('ws').folder, 'work.txt'), 'work\n');
    const committed = (await first.backup('ws')).key;
    await first.stop();
    const before = await n.backups.latestBackup({ owner: 'alice', metaId: 'm' });
    // The crash came after the final backup was committed, before its completion was recorded.
    const record = JSON.parse(readFileSync(n.stateFile('ws'), 'utf8'));
    writeFileSync(n.stateFile('ws'), JSON.stringify({ ...record, state: 'disposing', dispose: { backup: true, finalBackupDone: false, archiveKey: committed } }));
    writeFileSync(path.join(record.folder, 'work.txt'), 'changed after the backup\n');

    const second = n.service();
    await second.recover();
    await second.dispose('ws', { backup: true });
    const after = await n.backups.latestBackup({ owner: 'alice', metaId: 'm' });
    assert.deepEqual(after, before, 'latest.json unchanged: the same key was not written again');
    const archive = n.storage.objects.get(committed)!;
    assert.equal(archive.length, before!.size, 'the archive bytes still match the manifest');
    assert.deepEqual([...n.storage.objects.keys()].filter((k) => k.endsWith('.tree.zst') || k.endsWith('.tar.zst')), [committed], 'no second backup');
    await second.stop();
  });

  it('finishes the commit of a backup whose manifest was stored before the crash (latest.json moved to it)', async () => {
    const n = node();
    const first = n.service();
    await first.recover();
    await first.init(request);
    writeFileSync(path.join(first.describe('ws').folder, 'work.txt'), 'work\n');
    const committed = (await first.backup('ws')).key;
    await first.stop();
    // The crash came after the manifest was written, before latest.json was: no current backup yet.
    n.storage.objects.delete('alice/workspaces/m/backups/latest.json');
    const record = JSON.parse(readFileSync(n.stateFile('ws'), 'utf8'));
    writeFileSync(n.stateFile('ws'), JSON.stringify({ ...record, state: 'disposing', dispose: { backup: true, finalBackupDone: false, archiveKey: committed } }));

    const second = n.service();
    await second.recover();
    await second.dispose('ws', { backup: true });
    assert.equal((await n.backups.latestBackup({ owner: 'alice', metaId: 'm' }))?.object, committed);
    await second.stop();
  });
});
