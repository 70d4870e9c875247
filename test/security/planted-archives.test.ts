import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import { WsdClient } from '../../core/api/client.js';
import { BackupStore } from '../../core/content/backup-store.js';
import { silentLogger } from '../../core/observability/logger.js';
import { LocalStorageBackend } from '../../plugins/storage/local/local-storage-backend.js';
import { startDaemonProcess, testDaemonConfig, type DaemonProcess } from '../kit/daemon-process.js';
import { tempDir } from '../kit/temp-dir.js';

/**
 * Probe findings #8 (decompression bomb), #9 (setuid), and the manifest trust they rest on: objects planted in
 * storage, restored through the gRPC API.
 */

const hmacKey = 'k'.repeat(40);

/** The local storage file of `key` (`a/b/c` → `<root>/a~/b~/c`). */
const storageFile = (root: string, key: string) => path.join(root, ...key.split('/').map((segment, i, all) => (i < all.length - 1 ? `${segment}~` : segment)));

/** A tar.zst of `tree` (GNU tar, as wsd writes them) with a manifest that is consistent with the archive bytes. */
function plantBackup(storageRoot: string, owner: string, metaId: string, tree: string, options: { claimUncompressed?: number; hmac?: boolean; objectOwner?: string } = {}): { object: string } {
  // Through a pipe, not memory: the bomb's tar stream is 256 MiB.
  const file = path.join(tempDir('wsd-planted-'), 'archive.tar.zst');
  execFileSync('sh', ['-c', 'tar --create --file=- --format=posix --numeric-owner --directory "$1" . | zstd -q -3 -c > "$2"', 'sh', tree, file]);
  const zst = readFileSync(file);
  const tarBytes = Number(execFileSync('sh', ['-c', 'zstd -d -q -c "$1" | wc -c', 'sh', file]).toString().trim());
  const objectOwner = options.objectOwner ?? owner;
  const object = `${objectOwner}/workspaces/${metaId}/backups/20260101T000000000Z-planted.tar.zst`;
  const manifest: Record<string, unknown> = {
    version: 1,
    kind: 'backup',
    object,
    size: zst.length,
    sha256: createHash('sha256').update(zst).digest('hex'),
    format: 'tar+zstd',
    createdAt: new Date().toISOString(),
    files: 2,
    bytesUncompressed: options.claimUncompressed ?? tarBytes,
    workspaceId: metaId,
    owner,
    instanceId: 'planted',
  };
  const write = (key: string, body: Buffer | string) => {
    mkdirSync(path.dirname(storageFile(storageRoot, key)), { recursive: true });
    writeFileSync(storageFile(storageRoot, key), body);
  };
  write(object, zst);
  write(object.replace(/\.tar\.zst$/, '.manifest.json'), JSON.stringify(manifest));
  write(`${owner}/workspaces/${metaId}/backups/latest.json`, JSON.stringify(manifest));
  return { object };
}

async function rejects(promise: Promise<unknown>, code: status, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: ServiceError) => {
    assert.equal(error.code, code, `expected ${status[code]}, got ${status[error.code]}: ${error.details}`);
    assert.match(error.details, message);
    return true;
  });
}

describe('security: planted archives and manifests (#8, #9)', () => {
  let dir: string;
  let daemon: DaemonProcess;
  let client: WsdClient;
  let storageRoot: string;
  let workingArea: string;

  before(async () => {
    dir = tempDir('wsd-sec-planted-');
    daemon = await startDaemonProcess({ args: ['--config', testDaemonConfig(dir)] });
    client = new WsdClient({ address: daemon.grpcAddress });
    storageRoot = path.join(dir, 'data', 'storage');
    workingArea = path.join(dir, 'data', 'workspaces');
  });
  after(async () => {
    client?.close();
    await daemon?.stop();
  });

  it('#8 a decompression bomb stops at the size its manifest recorded, with DATA_LOSS, long before it expands', async () => {
    const tree = tempDir('wsd-bomb-');
    // 256 MiB of zeros compress to a few KB; the manifest claims the 10 KiB of a small tree.
    execFileSync('truncate', ['-s', '256M', path.join(tree, 'zeros')]);
    plantBackup(storageRoot, 'mallory', 'bomb', tree, { claimUncompressed: 10_240 });
    const started = Date.now();
    await rejects(client.initWorkspace({ id: 'bomb', metadata: { owner: 'mallory', meta_id: 'bomb' }, initializer: { backup: {} } }), status.DATA_LOSS, /expands past|manifest records/);
    assert.ok(Date.now() - started < 20_000, 'stopped early');
    assert.equal(existsSync(path.join(workingArea, 'bomb')), false, 'nothing of it stays');
  });

  it('#8 a restore larger than the workspace quota stops with RESOURCE_EXHAUSTED', async () => {
    const tree = tempDir('wsd-big-');
    writeFileSync(path.join(tree, 'big.bin'), Buffer.alloc(4 * 1024 * 1024, 7));
    plantBackup(storageRoot, 'mallory', 'big', tree);
    await rejects(
      client.initWorkspace({ id: 'big', metadata: { owner: 'mallory', meta_id: 'big' }, initializer: { backup: {} }, storage_quota_bytes: 1024 * 1024 }),
      status.RESOURCE_EXHAUSTED,
      /quota/,
    );
    assert.equal(existsSync(path.join(workingArea, 'big')), false);
  });

  it('#9 setuid and setgid bits of restored files are cleared; a setgid folder keeps its bit', async () => {
    const tree = tempDir('wsd-setuid-');
    writeFileSync(path.join(tree, 'suid-shell'), '#!/bin/sh\nid\n');
    chmodSync(path.join(tree, 'suid-shell'), 0o6755);
    mkdirSync(path.join(tree, 'shared'));
    chmodSync(path.join(tree, 'shared'), 0o2775);
    plantBackup(storageRoot, 'mallory', 'suid', tree);
    await client.initWorkspace({ id: 'suid', metadata: { owner: 'mallory', meta_id: 'suid' }, initializer: { backup: {} } });
    try {
      const mode = statSync(path.join(workingArea, 'suid', 'suid-shell')).mode & 0o7777;
      assert.equal(mode, 0o755, `restored mode ${mode.toString(8)}`);
      assert.equal(statSync(path.join(workingArea, 'suid', 'shared')).mode & 0o7777, 0o2775);
    } finally {
      await client.disposeWorkspace('suid');
    }
  });

  it("a planted latest.json naming another owner's archive restores nothing", async () => {
    const tree = tempDir('wsd-victim-');
    writeFileSync(path.join(tree, 'secret.txt'), 'victim data\n');
    plantBackup(storageRoot, 'victim', 'v', tree);
    // Mallory's latest.json points at the victim's archive, with the right size and digest.
    const { object } = plantBackup(storageRoot, 'victim', 'v', tree);
    const manifest = JSON.parse(readFileSync(storageFile(storageRoot, `victim/workspaces/v/backups/latest.json`), 'utf8'));
    const latest = storageFile(storageRoot, 'mallory/workspaces/steal/backups/latest.json');
    mkdirSync(path.dirname(latest), { recursive: true });
    writeFileSync(latest, JSON.stringify({ ...manifest, owner: 'mallory', workspaceId: 'steal', object }));
    await rejects(client.initWorkspace({ id: 'steal', metadata: { owner: 'mallory', meta_id: 'steal' }, initializer: { backup: {} } }), status.DATA_LOSS, /not one of this workspace's backups/);
    assert.equal(existsSync(path.join(workingArea, 'steal')), false);
  });

  it("#11 a snapshot of another owner is refused unless initializers.snapshot.allowOtherOwners", async () => {
    await client.initWorkspace({ id: 'snap-src', metadata: { owner: 'alice', meta_id: 'snap' }, initializer: { empty: {} } });
    writeFileSync(path.join(workingArea, 'snap-src', 'mine.txt'), 'alice\n');
    const name = await client.takeSnapshot('snap-src');
    await client.disposeWorkspace('snap-src');
    await rejects(client.initWorkspace({ id: 'snap-steal', metadata: { owner: 'mallory', meta_id: 'x' }, initializer: { snapshot: { snapshot: name } } }), status.FAILED_PRECONDITION, /another owner/);
    await client.initWorkspace({ id: 'snap-own', metadata: { owner: 'alice', meta_id: 'y' }, initializer: { snapshot: { snapshot: name } } });
    assert.equal(readFileSync(path.join(workingArea, 'snap-own', 'mine.txt'), 'utf8'), 'alice\n');
    await client.disposeWorkspace('snap-own');
  });
});

describe('security: authenticated manifests (backup.hmacKey)', () => {
  it('refuses manifests without a valid hmac, restores what this daemon signed, and accepts unsigned ones only when told', async () => {
    const dir = tempDir('wsd-sec-hmac-');
    const storageRoot = path.join(dir, 'data', 'storage');
    const daemon = await startDaemonProcess({ args: ['--config', testDaemonConfig(dir, `backup:\n  hmacKey: ${hmacKey}\n`)] });
    const client = new WsdClient({ address: daemon.grpcAddress });
    try {
      const tree = tempDir('wsd-hmac-tree-');
      writeFileSync(path.join(tree, 'planted.txt'), 'planted\n');
      plantBackup(storageRoot, 'mallory', 'unsigned', tree);
      await rejects(client.initWorkspace({ id: 'u1', metadata: { owner: 'mallory', meta_id: 'unsigned' }, initializer: { backup: {} } }), status.DATA_LOSS, /not authenticated/);

      // A forged hmac is refused too.
      const latest = storageFile(storageRoot, 'mallory/workspaces/unsigned/backups/latest.json');
      writeFileSync(latest, JSON.stringify({ ...JSON.parse(readFileSync(latest, 'utf8')), hmac: 'ab'.repeat(32) }));
      await rejects(client.initWorkspace({ id: 'u2', metadata: { owner: 'mallory', meta_id: 'unsigned' }, initializer: { backup: {} } }), status.DATA_LOSS, /hmac does not match/);

      // What the daemon wrote itself carries a valid hmac and restores.
      await client.initWorkspace({ id: 's1', metadata: { owner: 'bob', meta_id: 'signed' }, initializer: { empty: {} } });
      writeFileSync(path.join(dir, 'data', 'workspaces', 's1', 'work.txt'), 'work\n');
      await client.disposeWorkspace('s1', { backup: true });
      const stored = JSON.parse(readFileSync(storageFile(storageRoot, 'bob/workspaces/signed/backups/latest.json'), 'utf8'));
      assert.match(stored.hmac, /^[0-9a-f]{64}$/);
      await client.initWorkspace({ id: 's2', metadata: { owner: 'bob', meta_id: 'signed' }, initializer: { backup: {} } });
      assert.equal(readFileSync(path.join(dir, 'data', 'workspaces', 's2', 'work.txt'), 'utf8'), 'work\n');
      await client.disposeWorkspace('s2');
    } finally {
      client.close();
      await daemon.stop();
    }

    const lenient = await startDaemonProcess({ args: ['--config', testDaemonConfig(dir, `backup:\n  hmacKey: ${hmacKey}\n  acceptUnsignedManifests: true\n`)] });
    const again = new WsdClient({ address: lenient.grpcAddress });
    try {
      const tree = tempDir('wsd-hmac-old-');
      writeFileSync(path.join(tree, 'old.txt'), 'from before the key\n');
      plantBackup(storageRoot, 'carol', 'old', tree);
      await again.initWorkspace({ id: 'o1', metadata: { owner: 'carol', meta_id: 'old' }, initializer: { backup: {} } });
      assert.equal(readFileSync(path.join(dir, 'data', 'workspaces', 'o1', 'old.txt'), 'utf8'), 'from before the key\n');
      assert.ok(lenient.logs.some((l) => /without hmac/.test(String(l.msg))), 'the unsigned restore is logged');
      await again.disposeWorkspace('o1');
    } finally {
      again.close();
      await lenient.stop();
    }
  });
});

describe('security: restores become visible only once verified', () => {
  it('a corrupt archive restored over existing content leaves the folder exactly as it was', async () => {
    const root = tempDir('wsd-sec-staging-');
    const storage = new LocalStorageBackend(path.join(root, 'storage'));
    await storage.start();
    const store = new BackupStore(storage, silentLogger);
    const source = path.join(root, 'source');
    mkdirSync(source);
    writeFileSync(path.join(source, 'new.txt'), 'from the archive\n');
    const manifest = await store.write({ owner: 'o', metaId: 'm', instanceId: 'i' }, source, 'backup');
    const dir = path.join(root, 'workspace');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'existing.txt'), 'earlier content\n');
    await assert.rejects(store.restore({ ...manifest, sha256: '0'.repeat(64) }, dir), (error: Error & { code?: string }) => error.code === 'DATA_LOSS');
    assert.deepEqual(readdirSync(dir), ['existing.txt'], 'nothing unverified became visible, no staging folder left');
    await store.restore(manifest, dir);
    assert.deepEqual(readdirSync(dir).sort(), ['existing.txt', 'new.txt']);
  });
});
