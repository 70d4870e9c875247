import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { BackupStore } from '../../core/content/backup-store.js';
import { WsdError, isWsdError } from '../../core/errors.js';
import type { ContentInitializer } from '../../core/initializer/content-initializer.js';
import { InitializerRegistry } from '../../core/initializer/initializer-registry.js';
import { createLogger, silentLogger } from '../../core/observability/logger.js';
import type { QuotaStrategy } from '../../core/quota/quota-strategy.js';
import { WorkspaceService, type InitRequest } from '../../core/workspace/workspace-service.js';
import { EmptyContentInitializer } from '../../plugins/initializer/empty/empty-content-initializer.js';
import { memoryStorage, recordingQuota } from '../kit/fakes.js';
import { tempDir } from '../kit/temp-dir.js';

/** Fails after writing into the folder: an init that fails once the quota is provisioned. */
const failingInitializer: ContentInitializer = {
  kind: 'failing',
  async initialize({ dir }) {
    writeFileSync(path.join(dir, 'half-done'), 'x');
    throw new WsdError('FAILED_PRECONDITION', 'clone failed');
  },
};

/** One node's data folder; `service(quota)` builds a WorkspaceService on it, as the daemon does, with fakes around. */
function node() {
  const root = tempDir('wsd-quota-lifecycle-');
  const workingArea = path.join(root, 'workspaces');
  const stateDir = path.join(root, 'state');
  const storage = memoryStorage();
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({ level: 'warn', sink: { write: (line: string) => lines.push(JSON.parse(line)) } });
  const service = (quota: QuotaStrategy) =>
    new WorkspaceService({
      workingArea,
      stateDir,
      storage,
      quota,
      initializers: new InitializerRegistry([new EmptyContentInitializer(), failingInitializer]),
      backups: new BackupStore(storage, silentLogger),
      log,
    });
  const folder = (id: string) => path.join(workingArea, id);
  const stateFile = (id: string) => path.join(stateDir, `${id}.json`);
  return { workingArea, stateDir, storage, lines, service, folder, stateFile };
}

const request = (id: string, options: Partial<InitRequest> = {}): InitRequest => ({
  id,
  owner: 'alice',
  metaId: `m-${id}`,
  initializer: { kind: 'empty', spec: {} },
  remoteStorageDisabled: false,
  storageQuotaBytes: 0,
  ...options,
});

describe('quota lifecycle through the WorkspaceService', () => {
  it('init provisions, sets the soft then the hard limit; dispose releases after the final backup, and release removes the folder', async () => {
    const n = node();
    const quota = recordingQuota();
    const atRelease: Array<{ folderThere: boolean; backups: number }> = [];
    const release = quota.release.bind(quota);
    quota.release = async (options) => {
      atRelease.push({ folderThere: existsSync(options.handle.dir), backups: [...n.storage.objects.keys()].filter((k) => k.includes('/backups/')).length });
      return release(options);
    };
    const workspaces = n.service(quota);
    await workspaces.recover();
    await workspaces.init(request('ws-1', { storageQuotaBytes: 5_000_000 }));
    assert.deepEqual(quota.calls, ['recover ', 'provision ws-1', 'setLimit ws-1 soft 5000000', 'setLimit ws-1 hard 5000000']);
    const handle = workspaces.describe('ws-1').quota!;
    assert.equal(handle.version, 1);
    assert.equal(handle.strategy, 'recording');
    writeFileSync(path.join(n.folder('ws-1'), 'work.txt'), 'work');

    await workspaces.dispose('ws-1', { backup: true });
    assert.deepEqual(quota.calls.slice(4), ['release ws-1']);
    assert.equal(atRelease.length, 1);
    assert.equal(atRelease[0]!.folderThere, true, 'core did not delete the folder before release');
    assert.ok(atRelease[0]!.backups > 0, 'the final backup was stored before release');
    assert.equal(existsSync(n.folder('ws-1')), false, 'release removed the folder');
    assert.equal(existsSync(n.stateFile('ws-1')), false);
    await workspaces.stop();
  });

  it('a strategy without soft limits gets the final limit at provision and no soft phase', async () => {
    const n = node();
    const quota = recordingQuota([], { capabilities: { softLimits: false } });
    const workspaces = n.service(quota);
    await workspaces.recover();
    await workspaces.init(request('ws-1', { storageQuotaBytes: 5_000_000 }));
    assert.deepEqual(quota.calls, ['recover ', 'provision ws-1']);
    assert.equal(workspaces.describe('ws-1').quota!.limitBytes, 5_000_000);
    await workspaces.dispose('ws-1', { backup: false });
    assert.deepEqual(quota.calls.slice(2), ['release ws-1']);
    await workspaces.stop();
  });

  it('a failed init releases what provision created: the strategy removes the folder', async () => {
    const n = node();
    const quota = recordingQuota();
    const workspaces = n.service(quota);
    await workspaces.recover();
    await assert.rejects(workspaces.init(request('ws-1', { initializer: { kind: 'failing', spec: {} }, storageQuotaBytes: 1000 })), /clone failed/);
    assert.deepEqual(quota.calls, ['recover ', 'provision ws-1', 'setLimit ws-1 soft 1000', 'release ws-1']);
    assert.equal(existsSync(n.folder('ws-1')), false);
    const record = workspaces.describe('ws-1');
    assert.equal(record.state, 'failed');
    assert.equal(record.quota, undefined);
    await workspaces.stop();
  });

  it('a failed provision (the folder exists) releases nothing and deletes nothing', async () => {
    const n = node();
    const quota = recordingQuota();
    const workspaces = n.service(quota);
    await workspaces.recover();
    mkdirSync(n.folder('byhand'), { recursive: true });
    writeFileSync(path.join(n.folder('byhand'), 'keep.txt'), 'not wsd\'s');
    await assert.rejects(workspaces.init(request('byhand')), (error: unknown) => isWsdError(error, 'ALREADY_EXISTS'));
    assert.deepEqual(quota.calls, ['recover ', 'provision byhand']);
    assert.equal(readFileSync(path.join(n.folder('byhand'), 'keep.txt'), 'utf8'), 'not wsd\'s');
    await workspaces.dispose('byhand', { backup: false });
    assert.deepEqual(quota.calls, ['recover ', 'provision byhand'], 'disposing the failed record releases nothing');
    assert.equal(readFileSync(path.join(n.folder('byhand'), 'keep.txt'), 'utf8'), 'not wsd\'s');
    await workspaces.stop();
  });

  it('a release that fails keeps the workspace disposing with its handle; a later dispose retries without a second backup', async () => {
    const n = node();
    const quota = recordingQuota();
    const release = quota.release.bind(quota);
    let busy = true;
    quota.release = async (options) => {
      if (busy) throw new WsdError('UNAVAILABLE', 'umount: target is busy');
      return release(options);
    };
    const workspaces = n.service(quota);
    await workspaces.recover();
    await workspaces.init(request('ws-1'));
    await assert.rejects(workspaces.dispose('ws-1', { backup: true }), /target is busy/);
    const record = workspaces.describe('ws-1');
    assert.equal(record.state, 'disposing');
    assert.ok(record.quota, 'the handle is kept: the folder is still wsd\'s to release');
    assert.equal(record.dispose?.finalBackupDone, true);
    assert.equal(existsSync(n.folder('ws-1')), true, 'core did not delete in the strategy\'s place');
    busy = false;
    await workspaces.dispose('ws-1', { backup: true });
    assert.equal(existsSync(n.folder('ws-1')), false);
    const backups = (await workspaces.listArchives({ owner: 'alice', metaId: 'm-ws-1' })).backups;
    assert.equal(backups.length, 1, 'the final backup was taken once');
    await workspaces.stop();
  });

  it('a failed init whose release fails keeps its handle; the next init of the id releases it first', async () => {
    const n = node();
    const quota = recordingQuota();
    const release = quota.release.bind(quota);
    let busy = true;
    quota.release = async (options) => {
      if (busy) throw new WsdError('UNAVAILABLE', 'umount: target is busy');
      return release(options);
    };
    const workspaces = n.service(quota);
    await workspaces.recover();
    await assert.rejects(workspaces.init(request('ws-1', { initializer: { kind: 'failing', spec: {} } })), /clone failed/);
    assert.equal(workspaces.describe('ws-1').state, 'failed');
    assert.ok(workspaces.describe('ws-1').quota, 'the failed record keeps the handle it could not release');
    assert.equal(existsSync(path.join(n.folder('ws-1'), 'half-done')), true);
    busy = false;
    await workspaces.init(request('ws-1'));
    // (the busy releases never reached the fake) the old handle is released before the new folder is provisioned
    assert.deepEqual(quota.calls, ['recover ', 'provision ws-1', 'release ws-1', 'provision ws-1']);
    assert.equal(existsSync(path.join(n.folder('ws-1'), 'half-done')), false, 'the retry starts from a fresh folder');
    assert.equal(workspaces.describe('ws-1').state, 'ready');
    await workspaces.stop();
  });

  it('quotaUsage asks the strategy only when it reports usage', async () => {
    for (const reportsUsage of [false, true]) {
      const n = node();
      const quota = recordingQuota([], { capabilities: { reportsUsage } });
      const workspaces = n.service(quota);
      await workspaces.recover();
      await workspaces.init(request('ws-1', { storageQuotaBytes: 1_000_000 }));
      writeFileSync(path.join(n.folder('ws-1'), 'data.bin'), Buffer.alloc(1000));
      const usage = await workspaces.quotaUsage(workspaces.describe('ws-1'));
      if (reportsUsage) {
        assert.ok(usage.usedBytes! >= 1000);
        assert.equal(quota.calls.at(-1), 'usage ws-1');
      } else {
        assert.deepEqual(usage, {});
        assert.equal(quota.calls.some((c) => c.startsWith('usage')), false);
      }
      await workspaces.stop();
    }
  });

  it('recover tells the strategy which workspaces it knows without a handle (unreadable state, a handle naming another folder): leaveAlone', async () => {
    const n = node();
    const before = n.service(recordingQuota());
    await before.recover();
    await before.init(request('ws-own'));
    await before.init(request('ws-moved'));
    await before.stop();
    writeFileSync(n.stateFile('ws-broken'), '{ torn');
    const moved = JSON.parse(readFileSync(n.stateFile('ws-moved'), 'utf8'));
    moved.quota.dir = n.folder('elsewhere');
    writeFileSync(n.stateFile('ws-moved'), JSON.stringify(moved));

    const quota = recordingQuota();
    const workspaces = n.service(quota);
    await workspaces.recover();
    assert.deepEqual(quota.calls, ['recover ws-own']);
    assert.deepEqual(quota.leftAlone.sort(), ['ws-broken', 'ws-moved']);
    await workspaces.stop();
  });

  it('recover hands the strategy only its own handles before anything else; another strategy\'s workspace is served but not disposed', async () => {
    const n = node();
    // Before the restart: ws-own was provisioned by "recording", ws-old by "old" (the strategy configured earlier).
    const before = n.service(recordingQuota());
    await before.recover();
    await before.init(request('ws-own'));
    await before.stop();
    const older = n.service(recordingQuota([], { id: 'old' }));
    await older.init(request('ws-old'));
    writeFileSync(path.join(n.folder('ws-old'), 'work.txt'), 'old work');
    await older.stop();
    // And an init a crash interrupted, whose handle was persisted by wsd 0.1 (no version field yet).
    const half = JSON.parse(readFileSync(n.stateFile('ws-own'), 'utf8'));
    Object.assign(half, { id: 'ws-half', metaId: 'm-half', folder: n.folder('ws-half'), state: 'initializing' });
    half.quota = { ...half.quota, workspaceId: 'ws-half', dir: n.folder('ws-half') };
    delete half.quota.version;
    mkdirSync(n.folder('ws-half'));
    writeFileSync(path.join(n.folder('ws-half'), 'partial'), 'x');
    writeFileSync(n.stateFile('ws-half'), JSON.stringify(half));

    const calls: string[] = [];
    const quota = recordingQuota(calls);
    const workspaces = n.service(quota);
    await workspaces.recover();
    assert.match(calls[0]!, /^recover /, 'recover comes before any other call');
    assert.deepEqual(calls[0]!.slice('recover '.length).split(',').sort(), ['ws-half', 'ws-own'], 'only its own handles');
    assert.deepEqual(calls.slice(1), ['release ws-half'], 'the interrupted init is released by the strategy');
    assert.deepEqual(quota.leftAlone, ['ws-old'], 'a sweep of leftovers spares the detached workspace');
    assert.equal(existsSync(n.folder('ws-half')), false);
    assert.equal(workspaces.describe('ws-half').state, 'failed');

    // The other strategy's workspace stays served, without quota, logged once…
    assert.equal(workspaces.exists('ws-old'), true);
    await workspaces.waitForInit('ws-old');
    assert.deepEqual(await workspaces.quotaUsage(workspaces.describe('ws-old')), {});
    const loud = n.lines.filter((l) => l.level === 'error' && l.workspaceId === 'ws-old');
    assert.equal(loud.length, 1, 'logged loudly, once');
    assert.match(String(loud[0]!.reason), /"old".*quota\.plugin/);
    // …and its dispose is refused before anything changes, naming the strategy to configure.
    await assert.rejects(workspaces.dispose('ws-old', { backup: true }), (error: unknown) => {
      assert.ok(isWsdError(error, 'FAILED_PRECONDITION'), String(error));
      assert.match(error.message, /quota strategy "old".*configure quota\.plugin "old"/);
      return true;
    });
    assert.equal(workspaces.describe('ws-old').state, 'ready');
    assert.equal(readFileSync(path.join(n.folder('ws-old'), 'work.txt'), 'utf8'), 'old work');
    assert.equal(calls.some((c) => c.includes('ws-old')), false, 'the configured strategy never saw ws-old');
    assert.equal((await workspaces.listArchives({ owner: 'alice', metaId: 'm-ws-old' })).backups.length, 0, 'no final backup was taken');

    await workspaces.dispose('ws-own', { backup: false });
    assert.equal(calls.at(-1), 'release ws-own');
    await workspaces.stop();

    // With the old strategy configured again, ws-old goes the normal way.
    const oldCalls: string[] = [];
    const again = n.service(recordingQuota(oldCalls, { id: 'old' }));
    await again.recover();
    assert.deepEqual(oldCalls, ['recover ws-old']);
    await again.dispose('ws-old', { backup: true });
    assert.deepEqual(oldCalls, ['recover ws-old', 'release ws-old']);
    assert.equal(existsSync(n.folder('ws-old')), false);
    await again.stop();
  });

  it('a handle the strategy cannot re-attach is detached: served, reported, never released', async () => {
    const n = node();
    const first = n.service(recordingQuota());
    await first.recover();
    await first.init(request('ws-1'));
    await first.stop();
    const state = JSON.parse(readFileSync(n.stateFile('ws-1'), 'utf8'));
    state.quota.version = 2; // written by a newer wsd, then downgraded
    writeFileSync(n.stateFile('ws-1'), JSON.stringify(state));

    const quota = recordingQuota();
    const workspaces = n.service(quota);
    await workspaces.recover();
    assert.deepEqual(quota.calls, ['recover ws-1']);
    assert.equal(workspaces.exists('ws-1'), true);
    await assert.rejects(workspaces.dispose('ws-1', { backup: false }), /could not re-attach.*version 2/);
    assert.deepEqual(quota.calls, ['recover ws-1'], 'release never called');
    assert.equal(existsSync(n.folder('ws-1')), true);
    await workspaces.stop();
  });
});
