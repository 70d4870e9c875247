import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readdirSync, statSync, symlinkSync, truncateSync, utimesSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { readFileSync } from 'node:fs';
import { WsdError } from '../../core/errors.js';
import { BackupStore, type ArchiveTarget } from '../../core/content/backup-store.js';
import { createLogger } from '../../core/observability/logger.js';
import type { StorageBackend } from '../../core/storage/storage-backend.js';
import { LocalStorageBackend } from '../../plugins/storage/local/local-storage-backend.js';
import { tempDir } from '../kit/temp-dir.js';
import { treeManifest } from '../kit/tree-hash.js';

const log = createLogger({ level: 'error' });
const target = (metaId = 'ws-1', owner = 'olga'): ArchiveTarget => ({ owner, metaId, instanceId: `${metaId}-i` });

async function storedBytes(storage: StorageBackend, prefix = ''): Promise<number> {
  let total = 0;
  for await (const o of storage.list({ prefix })) total += o.size;
  return total;
}

/** A workspace-like tree: small text files, a large half-random file, links, an empty folder, odd names. */
function makeTree(dir: string): void {
  mkdirSync(path.join(dir, 'src', 'deep', 'er'), { recursive: true });
  mkdirSync(path.join(dir, 'empty'));
  for (let i = 0; i < 200; i++) writeFileSync(path.join(dir, 'src', `f${i}.txt`), `line ${i}\n`.repeat(50 + i));
  const big = Buffer.concat([randomBytes(20 * 1024 * 1024), Buffer.alloc(3 * 1024 * 1024, 'a'), randomBytes(1024 * 1024)]);
  writeFileSync(path.join(dir, 'big.bin'), big);
  writeFileSync(path.join(dir, 'src', 'deep', 'er', 'ünïcødé name.txt'), 'x');
  writeFileSync(path.join(dir, 'empty.txt'), '');
  symlinkSync('src/f1.txt', path.join(dir, 'link'));
  symlinkSync('/etc/passwd', path.join(dir, 'abs-link'));
  linkSync(path.join(dir, 'src', 'f2.txt'), path.join(dir, 'hard.txt'));
  chmodSync(path.join(dir, 'src', 'f3.txt'), 0o751);
  utimesSync(path.join(dir, 'src', 'f4.txt'), 1_000_000, 1_000_000);
}

/** A local storage, a store with its node cache, and an empty workspace folder, in a fresh temporary folder. */
function setup() {
  const tmp = { path: tempDir('chunked-') };
  const storage = new LocalStorageBackend(path.join(tmp.path, 'storage'));
  const store = new BackupStore(storage, log, { cacheDir: path.join(tmp.path, 'cache') });
  return { tmp, storage, store, ws: fresh(tmp.path, 'ws') };
}

function fresh(root: string, name: string): string {
  const dir = path.join(root, name);
  mkdirSync(dir);
  return dir;
}

describe('chunked backups (ADR 0007)', () => {
  it('round-trips a tree: content, modes, mtimes, symlinks, hard links, empty files and folders', async () => {
    const { tmp, store, ws } = setup();
    makeTree(ws);
    const manifest = await store.write(target(), ws, 'backup');
    assert.equal(manifest.version, 2);
    assert.equal(manifest.format, 'wsd-tree');
    assert.ok(manifest.object.endsWith('.tree.zst'));
    const restored = fresh(tmp.path, 'restored');
    await store.restore((await store.latestBackup(target()))!, restored);
    assert.deepEqual(await treeManifest(restored), await treeManifest(ws));
    assert.equal(statSync(path.join(restored, 'src', 'f4.txt')).mtimeMs, 1_000_000_000);
    // The folder restored into takes the root's mode and mtime (the staging folder itself stays 0700 until it is gone).
    chmodSync(ws, 0o751);
    utimesSync(ws, 2_000_000, 2_000_000);
    const again = fresh(tmp.path, 'again');
    await store.restore(await store.write(target(), ws, 'backup'), again);
    assert.equal(statSync(again).mode & 0o7777, 0o751);
    assert.equal(statSync(again).mtimeMs, 2_000_000_000);
    assert.equal(statSync(path.join(restored, 'hard.txt')).ino, statSync(path.join(restored, 'src', 'f2.txt')).ino);
  });

  it('an unchanged workspace stores nothing; a small change stores a small fraction', async () => {
    const { tmp, storage, store, ws } = setup();
    makeTree(ws);
    const first = await store.write(target(), ws, 'backup');
    const full = await storedBytes(storage);
    const again = await store.write(target(), ws, 'backup');
    assert.equal(again.object, first.object, 'unchanged: the current backup is returned');
    assert.equal(await storedBytes(storage), full, 'unchanged: not a byte stored');

    // 1 MiB rewritten in the middle of the big file, and one small file edited.
    const fd = openSync(path.join(ws, 'big.bin'), 'r+');
    writeSync(fd, randomBytes(1024 * 1024), 0, 1024 * 1024, 10 * 1024 * 1024);
    closeSync(fd);
    writeFileSync(path.join(ws, 'src', 'f7.txt'), 'edited\n');
    const second = await store.write(target(), ws, 'backup');
    assert.notEqual(second.object, first.object);
    // Content-defined chunks: the edit touches ~2 chunks of ~1 MiB (4 MiB at most each), not the 24 MiB file.
    assert.ok(second.uploadedBytes! < full / 3, `uploaded ${second.uploadedBytes} of a ${full}-byte full backup`);
    const restored = fresh(tmp.path, 'restored');
    await store.restore(second, restored);
    assert.deepEqual(await treeManifest(restored), await treeManifest(ws));
  });

  it('identical content in two workspaces of one owner is stored once', async () => {
    const tmp = { path: tempDir('chunked-') };
    const storage = new LocalStorageBackend(path.join(tmp.path, 'storage'));
    const store = new BackupStore(storage, log, { cacheDir: path.join(tmp.path, 'cache') });
    const a = fresh(tmp.path, 'a');
    const b = fresh(tmp.path, 'b');
    const data = randomBytes(2 * 1024 * 1024);
    writeFileSync(path.join(a, 'data'), data);
    writeFileSync(path.join(b, 'copy'), data);
    await store.write(target('ws-a'), a, 'backup');
    const packsAfterA = await storedBytes(storage, 'olga/repo/packs/');
    const second = await store.write(target('ws-b'), b, 'backup');
    assert.equal(await storedBytes(storage, 'olga/repo/packs/'), packsAfterA, 'no new pack bytes');
    assert.ok(second.uploadedBytes! < 4096);
    // Another owner never shares: its backup stores its own packs.
    await store.write(target('ws-c', 'peter'), b, 'backup');
    assert.ok((await storedBytes(storage, 'peter/repo/packs/')) >= data.length);
  });

  it('keeps sparse files sparse and restores zero runs without fetching them', async () => {
    const { tmp, store, ws } = setup();
    const file = path.join(ws, 'sparse.img');
    writeFileSync(file, 'head');
    truncateSync(file, 64 * 1024 * 1024);
    const manifest = await store.write(target(), ws, 'backup');
    assert.ok(manifest.uploadedBytes! < 64 * 1024, `uploaded ${manifest.uploadedBytes}`);
    const restored = fresh(tmp.path, 'restored');
    await store.restore(manifest, restored);
    const st = statSync(path.join(restored, 'sparse.img'));
    assert.equal(st.size, 64 * 1024 * 1024);
    assert.ok(st.blocks * 512 < 8 * 1024 * 1024, `allocated ${st.blocks * 512} bytes`);
  });

  it('refuses a restore larger than the quota before writing anything', async () => {
    const { tmp, store, ws } = setup();
    writeFileSync(path.join(ws, 'data'), randomBytes(1024 * 1024));
    const manifest = await store.write(target(), ws, 'backup');
    const restored = fresh(tmp.path, 'restored');
    await assert.rejects(store.restore(manifest, restored, undefined, { quotaBytes: 1000 }), { code: 'RESOURCE_EXHAUSTED' });
    assert.deepEqual(readdirSync(restored), []);
  });

  it('still restores tar.zst backups, and writes them with format: tar', async () => {
    const tmp = { path: tempDir('chunked-') };
    const storage = new LocalStorageBackend(path.join(tmp.path, 'storage'));
    const old = new BackupStore(storage, log, { format: 'tar' });
    const ws = fresh(tmp.path, 'ws');
    makeTree(ws);
    const archived = await old.write(target(), ws, 'backup');
    assert.ok(archived.object.endsWith('.tar.zst'));
    const store = new BackupStore(storage, log, { cacheDir: path.join(tmp.path, 'cache') });
    const restored = fresh(tmp.path, 'restored');
    await store.restore((await store.latestBackup(target()))!, restored);
    assert.deepEqual(await treeManifest(restored), await treeManifest(ws));
    // A chunked backup after an archive: both listed, the chunked one current.
    const next = await store.write(target(), ws, 'backup');
    const { backups } = await store.list(target());
    assert.deepEqual(backups.map((b) => b.object), [archived.object, next.object]);
  });

  it('archives a workspace holding a name that is not UTF-8 as tar, losing no file', async () => {
    const { tmp, store, ws } = setup();
    const name = Buffer.concat([Buffer.from(ws + '/bad-'), Buffer.from([0xff, 0xfe])]);
    writeFileSync(name, 'bytes');
    const manifest = await store.write(target(), ws, 'backup');
    assert.ok(manifest.object.endsWith('.tar.zst'), manifest.object);
    const restored = fresh(tmp.path, 'restored');
    await store.restore(manifest, restored);
    assert.deepEqual(readdirSync(restored, { encoding: 'buffer' }).map((b) => b.toString('hex')), [Buffer.from([...Buffer.from('bad-'), 0xff, 0xfe]).toString('hex')]);
  });

  it('exports a chunked backup as a tar.zst that GNU tar extracts to the same tree', async () => {
    const { tmp, store, ws } = setup();
    makeTree(ws);
    const manifest = await store.write(target(), ws, 'backup');
    const file = path.join(tmp.path, 'export.tar.zst');
    await pipeline(await store.exportArchive(manifest), createWriteStream(file));
    const out = fresh(tmp.path, 'out');
    execFileSync('tar', ['--zstd', '-xf', file, '-C', out]);
    assert.deepEqual(await treeManifest(out), await treeManifest(ws));
  });

  it('a ranged read that drops midway is read again from its start: the restore completes', async () => {
    const tmp = { path: tempDir('chunked-') };
    const local = new LocalStorageBackend(path.join(tmp.path, 'storage'));
    const store = new BackupStore(local, log, { cacheDir: path.join(tmp.path, 'cache') });
    const ws = fresh(tmp.path, 'ws');
    makeTree(ws);
    const manifest = await store.write(target(), ws, 'backup');
    // Every first ranged read of a pack breaks after 64 KiB, as a dropped connection would.
    let dropped = 0;
    const seen = new Set<string>();
    const flaky: StorageBackend = Object.create(local, {
      get: {
        value: async (options: Parameters<StorageBackend['get']>[0]) => {
          const result = await local.get(options);
          const id = `${options.key}@${options.range?.offset}`;
          if (!options.key.endsWith('.pack') || seen.has(id)) return result;
          seen.add(id);
          dropped++;
          let passed = 0;
          const body = result.body.pipe(
            new Transform({
              transform(chunk: Buffer, _encoding, callback) {
                passed += chunk.length;
                if (passed > 64 * 1024) callback(new WsdError('UNAVAILABLE', 'connection reset'));
                else callback(null, chunk);
              },
            }),
          );
          return { ...result, body };
        },
      },
    });
    const restored = fresh(tmp.path, 'restored');
    await new BackupStore(flaky, log).restore(manifest, restored);
    assert.ok(dropped > 0);
    assert.deepEqual(await treeManifest(restored), await treeManifest(ws));
  });

  it('a corrupt chunk in a pack fails the restore with DATA_LOSS and leaves the folder as it was', async () => {
    const { tmp, storage, store, ws } = setup();
    makeTree(ws);
    const manifest = await store.write(target(), ws, 'backup');
    for await (const o of storage.list({ prefix: 'olga/repo/packs/' })) {
      const file = execFileSync('find', [path.join(tmp.path, 'storage'), '-name', path.basename(o.key)], { encoding: 'utf8' }).trim();
      const bytes = readFileSync(file);
      bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
      writeFileSync(file, bytes);
    }
    const restored = fresh(tmp.path, 'restored');
    writeFileSync(path.join(restored, 'mine'), 'kept');
    await assert.rejects(store.restore(manifest, restored), { code: 'DATA_LOSS' });
    assert.deepEqual(readdirSync(restored), ['mine']);
  });

  it('a restore remembered for its workspace makes the next backup cost stats: nothing read, nothing stored', async () => {
    const tmp = { path: tempDir('chunked-') };
    const storage = new LocalStorageBackend(path.join(tmp.path, 'storage'));
    const ws = fresh(tmp.path, 'ws');
    makeTree(ws);
    const manifest = await new BackupStore(storage, log, { cacheDir: path.join(tmp.path, 'cache-a') }).write(target(), ws, 'backup');
    // Another node, with an empty cache, restores the workspace and backs it up.
    const nodeB = new BackupStore(storage, log, { cacheDir: path.join(tmp.path, 'cache-b') });
    const restored = fresh(tmp.path, 'restored');
    await nodeB.restore(manifest, restored, undefined, { cacheAs: target() });
    const before = await storedBytes(storage);
    const phases: string[] = [];
    const again = await nodeB.write(target(), restored, 'backup', { progress: (p) => p.phase && phases.push(p.phase) });
    assert.equal(again.object, manifest.object, 'the restored tree is the current backup');
    assert.equal(await storedBytes(storage), before);
    assert.ok(phases.includes('unchanged since the last backup'), phases.join(', '));
  });
});
