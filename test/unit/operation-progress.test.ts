import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { BackupStore } from '../../core/content/backup-store.js';
import { InitializerRegistry } from '../../core/initializer/initializer-registry.js';
import { silentLogger } from '../../core/observability/logger.js';
import type { StorageBackend } from '../../core/storage/storage-backend.js';
import { ProgressBoard, type OperationProgress } from '../../core/workspace/operation-progress.js';
import { WorkspaceService } from '../../core/workspace/workspace-service.js';
import { BackupContentInitializer } from '../../plugins/initializer/backup/backup-content-initializer.js';
import { EmptyContentInitializer } from '../../plugins/initializer/empty/empty-content-initializer.js';
import { ProgressRenderer, withProgress } from '../../core/cli/progress-display.js';
import { memoryStorage, recordingQuota } from '../kit/fakes.js';
import { tempDir } from '../kit/temp-dir.js';

/**
 * A node whose storage samples the workspace's progress each time it takes a chunk of an archive upload or hands
 * out one of a download: what a poller would see at that moment, without depending on poll timing.
 */
function node() {
  const root = tempDir('wsd-progress-');
  const inner = memoryStorage();
  const samples: Array<OperationProgress | undefined> = [];
  let service: WorkspaceService;
  const sample = (operation: string) => samples.push(service.operationProgress('ws').find((p) => p.operation === operation));
  const storage: StorageBackend = Object.assign(Object.create(inner) as StorageBackend, {
    async put(options: Parameters<StorageBackend['put']>[0]) {
      if (!options.key.endsWith('.tar.zst')) return inner.put(options);
      const chunks: Buffer[] = [];
      for await (const chunk of options.body as Readable) {
        chunks.push(chunk as Buffer);
        sample(options.key.includes('/snapshots/') ? 'snapshot' : 'backup');
      }
      return inner.put({ ...options, body: Readable.from(chunks) });
    },
    async get(options: Parameters<StorageBackend['get']>[0]) {
      const result = await inner.get(options);
      if (!options.key.endsWith('.tar.zst')) return result;
      const body = Readable.from(
        (async function* () {
          for await (const chunk of result.body as Readable) {
            // Handed on in small pieces, each sampled after the restore has taken the previous one.
            for (let at = 0; at < (chunk as Buffer).length; at += 64 * 1024) {
              yield (chunk as Buffer).subarray(at, at + 64 * 1024);
              sample('init');
            }
          }
        })(),
      );
      return { ...result, body };
    },
  });
  // Byte counts of an archive stream: the tar format.
  const backups = new BackupStore(storage, silentLogger, { format: 'tar' });
  const initializers = new InitializerRegistry([new EmptyContentInitializer(), new BackupContentInitializer()]);
  service = new WorkspaceService({ workingArea: path.join(root, 'workspaces'), stateDir: path.join(root, 'state'), storage, quota: recordingQuota(), initializers, backups, log: silentLogger });
  return { service, samples, backups };
}

const request = (id: string, kind = 'empty') => ({ id, owner: 'alice', metaId: 'm', initializer: { kind, spec: {} }, remoteStorageDisabled: false, storageQuotaBytes: 0 });

/** A few MiB that zstd cannot shrink, in a few files. */
function fill(folder: string): void {
  mkdirSync(path.join(folder, 'data'));
  for (let i = 0; i < 4; i++) writeFileSync(path.join(folder, 'data', `part-${i}.bin`), randomBytes(1024 * 1024));
}

describe('operation progress', () => {
  it('a backup of a few MiB reports increasing byte counts while archiving, then its final phase with the totals', async () => {
    const { service, samples } = node();
    await service.recover();
    await service.init(request('ws'));
    fill(service.describe('ws').folder);
    const ref = await service.backup('ws');

    const archiving = samples.filter((s) => s?.phase === 'archiving');
    assert.ok(archiving.length >= 10, `sampled ${archiving.length} times while archiving`);
    const bytes = archiving.map((s) => s!.bytes);
    for (let i = 1; i < bytes.length; i++) assert.ok(bytes[i]! > bytes[i - 1]!, `bytes grow: ${bytes.join(', ')}`);
    assert.ok(bytes.at(-1)! > 4 * 1024 * 1024, 'the counts are the archive bytes handed to storage');
    assert.ok(archiving.some((s) => s!.files > 0), 'files archived are counted on the way');
    assert.ok(archiving.every((s) => !s!.done && s!.operation === 'backup'));

    const [final] = service.operationProgress('ws').filter((p) => p.operation === 'backup');
    assert.equal(final!.phase, 'done');
    assert.equal(final!.done, true);
    assert.equal(final!.bytes, ref.sizeBytes);
    assert.ok(final!.files >= 6, 'the root, the data folder and four files');
    assert.ok(Date.parse(final!.updatedAt) >= Date.parse(final!.startedAt));
    await service.stop();
  });

  it('a restore reports bytes read out of the archive size, a snapshot its own operation, and a failure its error', async () => {
    const { service, samples } = node();
    await service.recover();
    await service.init(request('ws'));
    fill(service.describe('ws').folder);
    const ref = await service.backup('ws');
    await service.takeSnapshot('ws', { returnImmediately: false });
    assert.ok(samples.some((s) => s?.operation === 'snapshot' && s.phase === 'archiving' && s.bytes > 0));
    await service.dispose('ws', { backup: false });
    // Remembered after the dispose: a caller polling after its call returned still sees the end.
    assert.equal(service.operationProgress('ws').find((p) => p.operation === 'dispose')?.phase, 'done');

    samples.length = 0;
    await service.init(request('ws', 'backup'));
    const restoring = samples.filter((s) => s?.phase === 'restoring');
    assert.ok(restoring.length >= 10, `sampled ${restoring.length} times while restoring`);
    for (const s of restoring) assert.equal(s!.totalBytes, ref.sizeBytes);
    for (let i = 1; i < restoring.length; i++) assert.ok(restoring[i]!.bytes >= restoring[i - 1]!.bytes);
    assert.ok(restoring.at(-1)!.bytes > restoring[0]!.bytes);
    const init = service.operationProgress('ws').find((p) => p.operation === 'init')!;
    assert.deepEqual([init.phase, init.bytes, init.totalBytes], ['done', ref.sizeBytes, ref.sizeBytes]);

    await assert.rejects(service.init(request('ws')), /exists already/);
    await service.dispose('ws', { backup: false });
    await assert.rejects(service.init({ ...request('ws2', 'backup'), metaId: 'none' }), /no backup/);
    const failed = service.operationProgress('ws2').find((p) => p.operation === 'init')!;
    assert.equal(failed.phase, 'failed');
    assert.match(failed.error!, /no backup/);
    assert.throws(() => service.operationProgress('never'), /does not exist/);
    await service.stop();
  });
});

describe('progress board', () => {
  it('forgets the oldest finished workspaces beyond 256, never one with an operation running', () => {
    const board = new ProgressBoard();
    const running = board.start('ws-0', 'backup');
    for (let i = 1; i <= 300; i++) board.start(`ws-${i}`, 'init').finish();
    running.report({ phase: 'archiving', bytes: 5 });
    assert.deepEqual(board.get('ws-0')?.map((p) => [p.phase, p.bytes]), [['archiving', 5]]);
    assert.equal(board.get('ws-1'), undefined);
    assert.equal(board.get('ws-300')?.[0]?.phase, 'done');
    running.finish(new Error('storage https://user:secret@s3.example/b unreachable'));
    assert.equal(board.get('ws-0')?.[0]?.phase, 'failed');
    assert.doesNotMatch(board.get('ws-0')![0]!.error!, /secret/);
  });
});

describe('progress display', () => {
  const sample = (phase: string, bytes: number, at: number, extra: Partial<Record<string, unknown>> = {}) => ({
    operation: 'backup',
    phase,
    done: false,
    bytes,
    total_bytes: 0,
    files: 3,
    started_at: new Date(0).toISOString(),
    updated_at: new Date(at).toISOString(),
    error: '',
    ...extra,
  });

  it('on a terminal rewrites one line (phase, bytes, rate, files), then leaves one summary line', () => {
    const r = new ProgressRenderer('backup', true);
    assert.equal(r.start(), '\r\x1b[Kbackup: starting');
    assert.equal(r.update(sample('archiving', 1024 * 1024, 1000)), '\r\x1b[Kbackup: archiving, 1.0 MiB, 3 files');
    assert.equal(r.update(sample('archiving', 3 * 1024 * 1024, 2000)), '\r\x1b[Kbackup: archiving, 3.0 MiB, 3 files, 2.0 MiB/s');
    assert.equal(r.finish(sample('done', 4 * 1024 * 1024, 4000, { done: true })), '\r\x1b[Kbackup: done, 4.0 MiB, 3 files in 4.0s, 1.0 MiB/s\n');
  });

  it('elsewhere prints a plain line per phase, and the summary', () => {
    const r = new ProgressRenderer('backup', false);
    assert.equal(r.start(), undefined);
    assert.equal(r.update(sample('archiving', 1, 1000)), 'backup: archiving\n');
    assert.equal(r.update(sample('archiving', 2, 2000)), undefined);
    assert.equal(r.update(sample('committing', 2, 2500)), 'backup: committing\n');
    assert.equal(r.finish(sample('done', 2048, 3000, { done: true })), 'backup: done, 2.0 KiB, 3 files in 3.0s, 683 B/s\n');
  });

  it('polls while the call runs, ignores an earlier finished operation, and never fails the call', async () => {
    let polls = 0;
    const written: string[] = [];
    let finish!: (value: string) => void;
    const call = new Promise<string>((resolve) => (finish = resolve));
    const source = async () => {
      polls++;
      if (polls === 1) return [sample('done', 5, 100, { done: true })]; // the last backup, finished long ago
      if (polls === 2) throw Object.assign(new Error('flaky'), { code: 14 });
      if (polls === 3) return [sample('archiving', 10, 1000)];
      if (polls === 4) {
        finish('key');
        return [sample('archiving', 20, 2000)];
      }
      return [sample('done', 30, 3000, { done: true })];
    };
    const result = await withProgress(call, { operation: 'backup', source, stream: { isTTY: false, write: (t: string) => written.push(t) }, intervalMs: 1 });
    assert.equal(result, 'key');
    assert.deepEqual(written, ['backup: archiving\n', 'backup: done, 30 B, 3 files in 3.0s, 10 B/s\n']);
  });
});
