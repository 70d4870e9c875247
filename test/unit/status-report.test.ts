import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { BackupStore } from '../../core/content/backup-store.js';
import { WsdError } from '../../core/errors.js';
import type { ContentInitializer } from '../../core/initializer/content-initializer.js';
import { InitializerRegistry } from '../../core/initializer/initializer-registry.js';
import { silentLogger } from '../../core/observability/logger.js';
import { RecentFailures } from '../../core/observability/recent-failures.js';
import { gatherStatus } from '../../core/observability/status-report.js';
import type { QuotaStrategy } from '../../core/quota/quota-strategy.js';
import { WorkspaceService, type InitRequest } from '../../core/workspace/workspace-service.js';
import { EmptyContentInitializer } from '../../plugins/initializer/empty/empty-content-initializer.js';
import { memoryStorage, recordingQuota } from '../kit/fakes.js';
import { tempDir } from '../kit/temp-dir.js';

const secretUrl = 'https://deploy:ghp_SECRET123@git.example.com/repo.git?token=SECRET456';

/** Fails the way a clone does, quoting the URL it was given. */
const failingInitializer: ContentInitializer = {
  kind: 'failing',
  async initialize() {
    throw new WsdError('FAILED_PRECONDITION', `clone of ${secretUrl} failed: <b>denied</b>`);
  },
};

/** One node: a WorkspaceService as the daemon builds it, storage that can be made to fail, and its failure ring. */
function node(quota: QuotaStrategy = recordingQuota()) {
  const root = tempDir('wsd-status-report-');
  const storage = memoryStorage();
  let storageDown = false;
  const put = storage.put.bind(storage);
  storage.put = async (options) => {
    if (storageDown) throw new WsdError('UNAVAILABLE', `storage ${secretUrl} is unreachable`);
    return put(options);
  };
  const failures = new RecentFailures();
  const service = () =>
    new WorkspaceService({
      workingArea: path.join(root, 'workspaces'),
      stateDir: path.join(root, 'state'),
      storage,
      quota,
      initializers: new InitializerRegistry([new EmptyContentInitializer(), failingInitializer]),
      backups: new BackupStore(storage, silentLogger),
      log: silentLogger,
      failures,
    });
  return { root, failures, service, quota, setStorageDown: (down: boolean) => (storageDown = down) };
}

const request = (id: string, kind = 'empty', storageQuotaBytes = 0): InitRequest => ({
  id,
  owner: 'alice',
  metaId: `m-${id}`,
  initializer: { kind, spec: {} },
  remoteStorageDisabled: false,
  storageQuotaBytes,
});

describe('RecentFailures', () => {
  it('keeps the newest N, newest first, with secrets scrubbed', () => {
    const failures = new RecentFailures(3);
    for (let i = 1; i <= 5; i++) {
      failures.record({ workspaceId: `ws-${i}`, operation: 'backup', code: 'UNAVAILABLE', message: `attempt ${i} at ${secretUrl}`, time: new Date(Date.UTC(2026, 0, 1, 0, i)) });
    }
    const list = failures.list();
    assert.deepEqual(list.map((f) => f.workspaceId), ['ws-5', 'ws-4', 'ws-3']);
    assert.equal(list[0]!.time, '2026-01-01T00:05:00.000Z');
    assert.equal(list[0]!.error, 'attempt 5 at https://***@git.example.com/repo.git?***');
    list[0]!.error = 'changed';
    assert.notEqual(failures.list()[0]!.error, 'changed', 'list() hands out copies');
    assert.throws(() => new RecentFailures(0), RangeError);
  });
});

describe('failed operations recorded by the workspace service', () => {
  it('records each failed init, backup and dispose once, at the operation, scrubbed; successes add nothing', async () => {
    const n = node();
    const workspaces = n.service();
    await workspaces.recover();
    await workspaces.init(request('ws-ok'));
    await workspaces.backup('ws-ok');
    assert.deepEqual(n.failures.list(), []);

    await assert.rejects(workspaces.init(request('ws-bad', 'failing')), { code: 'FAILED_PRECONDITION' });
    n.setStorageDown(true);
    await assert.rejects(workspaces.backup('ws-ok'), { code: 'UNAVAILABLE' });
    // A failed final backup fails the dispose: one `dispose` entry (DATA_LOSS), not also a `backup` one.
    await assert.rejects(workspaces.dispose('ws-ok', { backup: true }), { code: 'DATA_LOSS' });

    const list = n.failures.list();
    assert.deepEqual(
      list.map((f) => [f.workspaceId, f.operation, f.code]),
      [
        ['ws-ok', 'dispose', 'DATA_LOSS'],
        ['ws-ok', 'backup', 'UNAVAILABLE'],
        ['ws-bad', 'init', 'FAILED_PRECONDITION'],
      ],
    );
    for (const failure of list) assert.doesNotMatch(failure.error, /SECRET/, failure.error);
    assert.match(list[2]!.error, /clone of https:\/\/\*\*\*@git\.example\.com\/repo\.git\?\*\*\* failed: <b>denied<\/b>/);
    // Client mistakes rejected before any work starts are not failed operations.
    await assert.rejects(workspaces.backup('no-such'), { code: 'NOT_FOUND' });
    assert.equal(n.failures.list().length, 3);
    await workspaces.stop();
  });

  it('records an init that a restart interrupted', async () => {
    const n = node();
    const first = n.service();
    await first.recover();
    await first.init(request('ws-1'));
    await first.stop();
    const stateFile = path.join(n.root, 'state', 'ws-1.json');
    writeFileSync(stateFile, JSON.stringify({ ...JSON.parse(readFileSync(stateFile, 'utf8')), state: 'initializing' }));
    const second = n.service();
    await second.recover();
    assert.deepEqual(n.failures.list().map((f) => [f.workspaceId, f.operation, f.error]), [['ws-1', 'init', 'init was interrupted by a daemon restart']]);
    await second.stop();
  });
});

describe('gatherStatus', () => {
  it('puts node, plugins, health, disk, quota, workspaces with backup ages and failures together', async () => {
    const n = node(recordingQuota([], { capabilities: { reportsUsage: true } }));
    const workspaces = n.service();
    await workspaces.recover();
    await workspaces.init(request('ws-a', 'empty', 4096));
    writeFileSync(path.join(workspaces.describe('ws-a').folder, 'work.txt'), 'x'.repeat(1000));
    const backup = await workspaces.backup('ws-a');
    await assert.rejects(workspaces.init(request('ws-b', 'failing', 8192)));
    const startedAt = new Date(Date.parse(backup.createdAt) - 3_600_000);
    const now = new Date(Date.parse(backup.createdAt) + 90_000);
    let healthCalls = 0;
    const sources = {
      node: 'node-1',
      version: '9.9.9',
      startedAt,
      workingArea: path.join(n.root, 'workspaces'),
      running: () => true,
      health: async () => {
        healthCalls++;
        return { ready: false, checks: [{ name: 'storage', critical: true, status: 'failing' as const, reason: `cannot reach ${secretUrl}` }] };
      },
      plugins: () => [{ kind: 'storage' as const, id: 's3', source: 'built-in', status: 'failed' as const, reason: `endpoint ${secretUrl} refused` }],
      quota: n.quota,
      workspaces,
      failures: n.failures,
      now: () => now,
    };
    const report = await gatherStatus(sources);
    assert.equal(report.node, 'node-1');
    assert.equal(report.version, '9.9.9');
    assert.equal(report.uptimeSeconds, 3690);
    assert.equal(report.generatedAt, now.toISOString());
    assert.equal(report.ready, false);
    assert.doesNotMatch(JSON.stringify(report), /SECRET/);
    assert.equal(report.health[0]!.reason, 'cannot reach https://***@git.example.com/repo.git?***');
    assert.equal(report.plugins[0]!.reason, 'endpoint https://***@git.example.com/repo.git?*** refused');
    assert.ok(report.disk.totalBytes! > 0 && report.disk.freeBytes! >= 0 && report.disk.error === undefined);

    const [a, b] = report.workspaces;
    assert.equal(a!.id, 'ws-a');
    assert.equal(a!.state, 'ready');
    assert.deepEqual(a!.lastBackup, { createdAt: backup.createdAt, ageSeconds: 90, sizeBytes: backup.sizeBytes, key: backup.key });
    assert.equal(a!.quota.limitBytes, 4096);
    assert.ok(a!.quota.usedBytes! >= 1000, 'usage as the strategy measured it');
    assert.equal(b!.id, 'ws-b');
    assert.equal(b!.state, 'failed');
    assert.equal(b!.lastBackup, undefined);
    assert.match(b!.lastError!, /\*\*\*@/);
    // Only workspaces that hold a folder count towards quota: the failed one holds none.
    assert.deepEqual(report.quota, { strategy: 'recording', enforces: false, reportsUsage: true, limitBytes: 4096, usedBytes: a!.quota.usedBytes });
    assert.deepEqual(report.failures.map((f) => [f.workspaceId, f.operation]), [['ws-b', 'init']]);

    // A daemon that is stopping is not ready, and its health checks are not run.
    const stopping = await gatherStatus({ ...sources, running: () => false });
    assert.equal(stopping.ready, false);
    assert.equal(healthCalls, 1);
    const missing = await gatherStatus({ ...sources, workingArea: path.join(n.root, 'nope') });
    assert.match(missing.disk.error!, /ENOENT/);
    await workspaces.stop();
  });
});
