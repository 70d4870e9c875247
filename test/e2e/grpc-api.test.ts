import os from 'node:os';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, renameSync, symlinkSync, utimesSync, writeFileSync, linkSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import { WsdClient, errorField } from '../../core/api/client.js';
import { startDaemonProcess, testDaemonConfig, type DaemonProcess } from '../kit/daemon-process.js';
import { tempDir } from '../kit/temp-dir.js';
import { treeManifest as fullTree } from '../kit/tree-hash.js';

/** The tree without the ready marker, which each workspace writes for itself. */
const treeManifest = (dir: string) => fullTree(dir, { ignore: (p) => p === '.gitpod' || p.startsWith('.gitpod/') });

async function rejectsWith(promise: Promise<unknown>, code: status, options: { field?: string; message?: RegExp } = {}): Promise<void> {
  await assert.rejects(promise, (error: ServiceError) => {
    assert.equal(error.code, code, `expected ${status[code]}, got ${status[error.code]}: ${error.details}`);
    if (options.field) assert.equal(errorField(error), options.field);
    if (options.message) assert.match(error.details, options.message);
    return true;
  });
}

/** A tree with the things users have in workspaces. */
function fillWorkspace(dir: string): void {
  mkdirSync(path.join(dir, 'src', 'deep', 'er'), { recursive: true });
  mkdirSync(path.join(dir, 'empty-dir'));
  writeFileSync(path.join(dir, 'README.md'), '# hello\n');
  writeFileSync(path.join(dir, 'src', 'deep', 'er', 'data.bin'), randomBytes(3 * 1024 * 1024 + 17));
  writeFileSync(path.join(dir, 'ünïcødé 文件.txt'), 'unicode\n');
  writeFileSync(path.join(dir, 'script.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(path.join(dir, 'script.sh'), 0o755);
  writeFileSync(path.join(dir, 'secret'), 'x');
  chmodSync(path.join(dir, 'secret'), 0o600);
  symlinkSync('src/deep/er/data.bin', path.join(dir, 'link-to-data'));
  symlinkSync('does/not/exist', path.join(dir, 'dangling'));
  linkSync(path.join(dir, 'README.md'), path.join(dir, 'README.hardlink'));
  utimesSync(path.join(dir, 'README.md'), new Date('2020-01-02T03:04:05Z'), new Date('2020-01-02T03:04:05Z'));
}

describe('gRPC API (daemon as a child process)', () => {
  let dir: string;
  let daemon: DaemonProcess;
  let client: WsdClient;
  const dataDir = () => path.join(dir, 'data');
  const folder = (id: string) => path.join(dataDir(), 'workspaces', id);
  const meta = (metaId: string) => ({ owner: 'alice', meta_id: metaId });

  before(async () => {
    dir = tempDir('wsd-grpc-');
    daemon = await startDaemonProcess({ args: ['--config', testDaemonConfig(dir)] });
    client = new WsdClient({ address: daemon.grpcAddress });
  });
  after(async () => {
    client?.close();
    assert.equal(await daemon?.stop(), 0);
  });

  it('init → exists → wait → backup → dispose(backup) → init from backup restores the content byte for byte', async () => {
    await client.initWorkspace({ id: 'ws-a', metadata: meta('m-roundtrip'), initializer: { empty: {} } });
    assert.equal(await client.isWorkspaceExists('ws-a'), true);
    await client.waitForInit('ws-a');
    fillWorkspace(folder('ws-a'));
    const before = await treeManifest(folder('ws-a'));

    const backupKey = await client.backupWorkspace('ws-a');
    assert.match(backupKey, /^alice\/workspaces\/m-roundtrip\/backups\/\d{8}T\d{9}Z-[0-9a-f]{8}\.(?:tar|tree)\.zst$/);
    const detail = await client.describeWorkspace('ws-a');
    assert.equal(detail.last_backup?.url, backupKey);
    assert.equal(detail.summary?.state, 'WORKSPACE_STATE_READY');
    assert.equal(detail.content_source, 'from-other');

    writeFileSync(path.join(folder('ws-a'), 'after-backup.txt'), 'only in the final backup\n');
    const finalTree = await treeManifest(folder('ws-a'));
    assert.deepEqual(await client.disposeWorkspace('ws-a', { backup: true }), {
      branch: '', latest_commit: '', uncommited_files: [], untracked_files: [], unpushed_commits: [],
      total_uncommited_files: 0, total_untracked_files: 0, total_unpushed_commits: 0,
    });
    assert.equal(existsSync(folder('ws-a')), false, 'folder removed after the final backup');
    assert.equal(await client.isWorkspaceExists('ws-a'), false);
    assert.notDeepEqual(before, finalTree);

    await client.initWorkspace({ id: 'ws-b', metadata: meta('m-roundtrip'), initializer: { backup: {} } });
    assert.deepEqual(await treeManifest(folder('ws-b')), finalTree);
    assert.equal((await client.describeWorkspace('ws-b')).content_source, 'from-backup');

    const archives = await client.listBackups({ owner: 'alice', meta_id: 'm-roundtrip' });
    assert.equal(archives.backups.length, 2);
    assert.equal(archives.latest, archives.backups.at(-1)!.url);
    await client.disposeWorkspace('ws-b');
  });

  it('snapshots restore through the snapshot initializer, also when returned immediately', async () => {
    await client.initWorkspace({ id: 'ws-snap', metadata: meta('m-snap'), initializer: { empty: {} } });
    writeFileSync(path.join(folder('ws-snap'), 'file.txt'), 'snapshot me\n');
    const name = await client.takeSnapshot('ws-snap');
    const quick = await client.takeSnapshot('ws-snap', { returnImmediately: true });
    assert.notEqual(name, quick);
    await client.initWorkspace({ id: 'ws-from-snap', metadata: meta('m-other'), initializer: { snapshot: { snapshot: name } } });
    assert.deepEqual(await treeManifest(folder('ws-from-snap')), await treeManifest(folder('ws-snap')));
    // The background snapshot's outcome shows in describe; the next operation on the workspace waits for it.
    await client.backupWorkspace('ws-snap');
    const ops = (await client.describeWorkspace('ws-snap')).snapshots;
    assert.deepEqual(ops.map((o) => [o.name, o.status]), [[name, 'done'], [quick, 'done']]);
    await client.initWorkspace({ id: 'ws-from-quick', metadata: meta('m-other'), initializer: { snapshot: { snapshot: quick } } });
    await Promise.all(['ws-snap', 'ws-from-snap', 'ws-from-quick'].map((id) => client.disposeWorkspace(id)));
  });

  it('rejects bad InitWorkspace requests with INVALID_ARGUMENT naming the field', async () => {
    await rejectsWith(client.initWorkspace({ metadata: meta('m'), initializer: { empty: {} } }), status.INVALID_ARGUMENT, { field: 'id' });
    await rejectsWith(client.initWorkspace({ id: 'x1', initializer: { empty: {} } }), status.INVALID_ARGUMENT, { field: 'metadata' });
    await rejectsWith(client.initWorkspace({ id: 'x1', metadata: { owner: 'alice' }, initializer: { empty: {} } }), status.INVALID_ARGUMENT, { field: 'metadata.meta_id' });
    await rejectsWith(client.initWorkspace({ id: 'x1', metadata: meta('m') }), status.INVALID_ARGUMENT, { field: 'initializer' });
    for (const id of ['../escape', 'a/b', '.', '..', 'x'.repeat(129), 'spa ce']) {
      await rejectsWith(client.initWorkspace({ id, metadata: meta('m'), initializer: { empty: {} } }), status.INVALID_ARGUMENT, { field: 'id' });
    }
    await rejectsWith(client.initWorkspace({ id: 'x1', metadata: { owner: '../up', meta_id: 'm' }, initializer: { empty: {} } }), status.INVALID_ARGUMENT, { field: 'metadata.owner' });
    assert.equal(existsSync(folder('x1')), false);
  });

  it('answers ALREADY_EXISTS, NOT_FOUND and FAILED_PRECONDITION where they apply', async () => {
    await client.initWorkspace({ id: 'ws-dup', metadata: meta('m-dup'), initializer: { empty: {} } });
    await rejectsWith(client.initWorkspace({ id: 'ws-dup', metadata: meta('m-dup'), initializer: { empty: {} } }), status.ALREADY_EXISTS);
    await client.disposeWorkspace('ws-dup');

    await rejectsWith(client.waitForInit('nope'), status.NOT_FOUND);
    await rejectsWith(client.disposeWorkspace('nope'), status.NOT_FOUND);
    await rejectsWith(client.backupWorkspace('nope'), status.NOT_FOUND);
    await rejectsWith(client.takeSnapshot('nope'), status.NOT_FOUND);
    await rejectsWith(client.describeWorkspace('nope'), status.NOT_FOUND);
    assert.equal(await client.isWorkspaceExists('nope'), false);

    // A missing backup is NOT_FOUND, never a silently empty workspace; the failed session leaves no folder.
    await rejectsWith(client.initWorkspace({ id: 'ws-nobackup', metadata: meta('m-never-backed-up'), initializer: { backup: {} } }), status.NOT_FOUND, { message: /no backup of workspace m-never-backed-up/ });
    assert.equal(existsSync(folder('ws-nobackup')), false);
    assert.equal(await client.isWorkspaceExists('ws-nobackup'), false);
    await rejectsWith(client.waitForInit('ws-nobackup'), status.FAILED_PRECONDITION, { message: /failed to initialize/ });
    await rejectsWith(
      client.initWorkspace({ id: 'ws-nosnap', metadata: meta('m'), initializer: { snapshot: { snapshot: 'alice/workspaces/m/snapshots/20260101T000000000Z-deadbeef.tar.zst' } } }),
      status.NOT_FOUND,
    );

    // Initializer failures are FAILED_PRECONDITION; a failed id can be initialized again.
    await rejectsWith(client.initWorkspace({ id: 'ws-nobackup', metadata: meta('m'), initializer: { backup: { from_volume_snapshot: true } } }), status.FAILED_PRECONDITION);
    await rejectsWith(client.initWorkspace({ id: 'ws-git', metadata: meta('m'), initializer: { git: { remote_uri: `file://${os.tmpdir()}/nowhere/at/all` } } }), status.FAILED_PRECONDITION, { message: /initializer git failed/ });
    assert.equal(existsSync(folder('ws-git')), false);
    await client.initWorkspace({ id: 'ws-nobackup', metadata: meta('m'), initializer: { empty: {} } });
    await client.disposeWorkspace('ws-nobackup');
  });

  it('refuses backups and snapshots when remote storage is disabled, and disposes without one', async () => {
    await client.initWorkspace({ id: 'ws-local', metadata: meta('m-local'), initializer: { empty: {} }, remote_storage_disabled: true });
    await rejectsWith(client.backupWorkspace('ws-local'), status.FAILED_PRECONDITION, { message: /remote storage is disabled/ });
    await rejectsWith(client.takeSnapshot('ws-local'), status.FAILED_PRECONDITION);
    await client.disposeWorkspace('ws-local', { backup: true });
    assert.equal((await client.listBackups({ owner: 'alice', meta_id: 'm-local' })).backups.length, 0);
  });

  it('gives concurrent DisposeWorkspace calls the same result, then NOT_FOUND', async () => {
    await client.initWorkspace({ id: 'ws-twice', metadata: meta('m-twice'), initializer: { empty: {} } });
    writeFileSync(path.join(folder('ws-twice'), 'big.bin'), randomBytes(8 * 1024 * 1024));
    const results = await Promise.allSettled([client.disposeWorkspace('ws-twice', { backup: true }), client.disposeWorkspace('ws-twice', { backup: true })]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled']);
    assert.equal((await client.listBackups({ owner: 'alice', meta_id: 'm-twice' })).backups.length, 1, 'one final backup, not two');
    await rejectsWith(client.disposeWorkspace('ws-twice'), status.NOT_FOUND);
  });

  it('keeps the folder and answers DATA_LOSS when the final backup fails; a retry succeeds', async () => {
    await client.initWorkspace({ id: 'ws-keep', metadata: meta('m-keep'), initializer: { empty: {} } });
    writeFileSync(path.join(folder('ws-keep'), 'work.txt'), 'uncommitted work\n');
    // Break storage: its root becomes a file, so every write fails (permissions would not stop root).
    const storage = path.join(dataDir(), 'storage');
    renameSync(storage, `${storage}.moved`);
    writeFileSync(storage, 'not a folder');
    try {
      await rejectsWith(client.disposeWorkspace('ws-keep', { backup: true }), status.DATA_LOSS, { message: /final backup failed/ });
      assert.equal(existsSync(path.join(folder('ws-keep'), 'work.txt')), true);
      assert.equal(await client.isWorkspaceExists('ws-keep'), true);
      assert.match((await client.describeWorkspace('ws-keep')).last_error, /final backup failed/);
    } finally {
      renameSync(storage, `${storage}.broken`);
      renameSync(`${storage}.moved`, storage);
    }
    await client.disposeWorkspace('ws-keep', { backup: true });
    await client.initWorkspace({ id: 'ws-keep-2', metadata: meta('m-keep'), initializer: { backup: {} } });
    assert.equal((await treeManifest(folder('ws-keep-2'))).find((e) => e.path === 'work.txt')?.size, 17);
    await client.disposeWorkspace('ws-keep-2');
  });

  it('finishes InitWorkspace when the client gives up early', async () => {
    await client.initWorkspace({ id: 'ws-big', metadata: meta('m-big'), initializer: { empty: {} } });
    const size = 160 * 1024 * 1024;
    writeFileSync(path.join(folder('ws-big'), 'big.bin'), randomBytes(size));
    await client.disposeWorkspace('ws-big', { backup: true });

    const impatient = new WsdClient({ address: daemon.grpcAddress, timeoutMs: 150 });
    try {
      await impatient.isWorkspaceExists('warm-up'); // the channel is connected, so the request surely reaches wsd
      await rejectsWith(impatient.initWorkspace({ id: 'ws-big-2', metadata: meta('m-big'), initializer: { backup: {} } }), status.DEADLINE_EXCEEDED);
    } finally {
      impatient.close();
    }
    assert.equal(await client.isWorkspaceExists('ws-big-2'), true, 'the request reached wsd and goes on');
    await client.waitForInit('ws-big-2');
    assert.equal((await treeManifest(folder('ws-big-2')))[0]?.size, size);
    await client.disposeWorkspace('ws-big-2');
  });

  it('reports plugins and node status over the admin service', async () => {
    const { plugins } = await client.getPluginStatus();
    assert.deepEqual(plugins.find((p) => p.kind === 'storage'), { kind: 'storage', id: 'local', source: 'built-in', status: 'ok', reason: '' });
    await client.initWorkspace({ id: 'ws-count', metadata: meta('m-count'), initializer: { empty: {} } });
    const node = await client.getNodeStatus();
    assert.equal(node.working_area, path.join(dataDir(), 'workspaces'));
    assert.ok(node.free_bytes > 0 && node.total_bytes >= node.free_bytes);
    assert.equal(node.ready, true);
    assert.equal(node.workspaces.find((s) => s.state === 'WORKSPACE_STATE_READY')?.count, 1);
    assert.deepEqual((await client.listWorkspaces()).workspaces.filter((w) => w.state !== 'WORKSPACE_STATE_FAILED').map((w) => w.id), ['ws-count']);
    await client.disposeWorkspace('ws-count');
  });
});
