import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, symlink, writeFile, chmod, utimes } from 'node:fs/promises';
import path from 'node:path';
import { Readable, type Readable as ReadableType } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { BackupStore } from '../../core/content/backup-store.js';
import { exportTarZst } from '../../core/content/tar-export.js';
import type { TarMember } from '../../core/content/tar-writer.js';
import { isWsdError } from '../../core/errors.js';
import { silentLogger } from '../../core/observability/logger.js';
import { LocalStorageBackend } from '../../plugins/storage/local/local-storage-backend.js';
import { firstDifference, tempDir, treeManifest } from '../kit/index.js';
import { treeMembers } from '../kit/tar-members.js';

const run = promisify(execFile);
const target = { owner: 'olga', metaId: 'exp', instanceId: 'exp-1' };

async function sampleTree(): Promise<string> {
  const src = tempDir('wsd-export-src-');
  await mkdir(path.join(src, 'src/deep/er'), { recursive: true });
  await writeFile(path.join(src, 'src/main.ts'), 'export {};\n');
  await writeFile(path.join(src, 'src/deep/er/data.bin'), Buffer.alloc(300_000, 9));
  await writeFile(path.join(src, 'empty'), '');
  await mkdir(path.join(src, 'empty-dir'));
  await symlink('src/main.ts', path.join(src, 'main-link'));
  await chmod(path.join(src, 'src/main.ts'), 0o755);
  await utimes(path.join(src, 'empty'), 1_000_000, 1_000_000.5);
  return src;
}

/** Reads `stream` into `file` and extracts it with `tar --zstd -xf`; returns the folder. */
async function extract(stream: ReadableType): Promise<string> {
  const base = tempDir('wsd-export-out-');
  const file = path.join(base, 'export.tar.zst');
  await pipeline(stream, createWriteStream(file));
  const dir = path.join(base, 'x');
  await mkdir(dir);
  await run('tar', ['--zstd', '-xf', file, '-C', dir]);
  return dir;
}

/** Drains `stream`; resolves with whether it ended cleanly, or rejects with its error (and says whether it ended). */
async function drain(stream: ReadableType): Promise<{ error?: unknown; ended: boolean }> {
  let ended = false;
  stream.on('end', () => (ended = true));
  try {
    for await (const _ of stream);
    return { ended };
  } catch (error) {
    return { error, ended };
  }
}

async function storeWithBackup() {
  const storageRoot = tempDir('wsd-export-storage-');
  const storage = new LocalStorageBackend(storageRoot);
  const store = new BackupStore(storage, silentLogger, { format: 'tar' }); // the stored archive itself is exported
  const src = await sampleTree();
  const manifest = await store.write(target, src, 'backup');
  return { storage, store, src, manifest };
}

describe('BackupStore.exportArchive (tar+zstd)', () => {
  it('streams the stored archive, which GNU tar extracts to the backed-up tree', async () => {
    const { store, src, manifest, storage } = await storeWithBackup();
    const chunks: Buffer[] = [];
    for await (const chunk of await store.exportArchive(manifest)) chunks.push(chunk as Buffer);
    const exported = Buffer.concat(chunks);
    assert.equal(exported.length, manifest.size);
    assert.equal(createHash('sha256').update(exported).digest('hex'), manifest.sha256);
    assert.deepEqual(exported, Buffer.concat(await (await storage.get({ key: manifest.object })).body.toArray()));
    const dir = await extract(await store.exportArchive(manifest));
    assert.equal(firstDifference(await treeManifest(dir), await treeManifest(src)), undefined);
  });

  for (const [what, tamper] of [
    ['altered (same size)', (data: Buffer) => Buffer.concat([data.subarray(0, data.length - 10), Buffer.alloc(10, 0x41)])],
    ['truncated', (data: Buffer) => data.subarray(0, data.length - 1)],
    ['longer', (data: Buffer) => Buffer.concat([data, Buffer.from('x')])],
  ] as const) {
    it(`a ${what} stored archive fails the export with DATA_LOSS, never a clean end`, async () => {
      const { storage, store, manifest } = await storeWithBackup();
      const { body } = await storage.get({ key: manifest.object });
      const original = Buffer.concat(await body.toArray());
      await storage.put({ key: manifest.object, body: Readable.from([tamper(original)]) });
      const outcome = await drain(await store.exportArchive(manifest));
      assert.equal(outcome.ended, false);
      assert.ok(isWsdError(outcome.error, 'DATA_LOSS'), String(outcome.error));
      assert.match((outcome.error as Error).message, /is corrupt/);
    });
  }

  it('finds a backup by its key; refuses keys of another shape or workspace (INVALID_ARGUMENT), and unknown ones (NOT_FOUND)', async () => {
    const { store, manifest } = await storeWithBackup();
    assert.deepEqual(await store.backup(target, manifest.object), manifest);
    for (const key of ['', 'latest', '../x.tar.zst', `olga/workspaces/other/backups/${path.basename(manifest.object)}`, `${manifest.object}/x`, 'olga/workspaces/exp/backups/latest.json', 'olga/workspaces/exp/backups/../snapshots/a.tar.zst']) {
      await assert.rejects(store.backup(target, key), (e: unknown) => isWsdError(e, 'INVALID_ARGUMENT') && (e as { field?: string }).field === 'backup', key);
    }
    await assert.rejects(store.backup(target, 'olga/workspaces/exp/backups/20200101T000000000Z-deadbeef.tar.zst'), (e: unknown) => isWsdError(e, 'NOT_FOUND'));
  });

  it('refuses a format it cannot export with FAILED_PRECONDITION', async () => {
    const { store, manifest } = await storeWithBackup();
    await assert.rejects(store.exportArchive({ ...manifest, format: 'chunks+zstd' }), (e: unknown) => isWsdError(e, 'FAILED_PRECONDITION'));
  });
});

describe('exportTarZst', () => {
  it('compresses a member stream into a .tar.zst that GNU tar extracts to the same tree', async () => {
    const src = await sampleTree();
    const dir = await extract(exportTarZst(treeMembers(src)));
    assert.equal(firstDifference(await treeManifest(dir), await treeManifest(src)), undefined);
  });

  it('a member whose data does not match its size fails the export with DATA_LOSS, never a clean (truncated) end', async () => {
    const members = (async function* (): AsyncGenerator<TarMember> {
      yield { path: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n };
      yield { path: 'first', type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n, size: 5, data: () => Readable.from([Buffer.from('first')]) };
      yield { path: 'short', type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n, size: 1_000_000, data: () => Readable.from([Buffer.alloc(1000)]) };
    })();
    const outcome = await drain(exportTarZst(members));
    assert.equal(outcome.ended, false);
    assert.ok(isWsdError(outcome.error, 'DATA_LOSS'), String(outcome.error));
  });

  it('a failing member source fails the export; an abort cancels it', async () => {
    const failing = (async function* (): AsyncGenerator<TarMember> {
      yield { path: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n };
      throw new Error('tree object unreadable');
    })();
    const failed = await drain(exportTarZst(failing));
    assert.equal(failed.ended, false);
    assert.match(String((failed.error as Error)?.message), /tree object unreadable/);

    const abort = new AbortController();
    const endless = (async function* (): AsyncGenerator<TarMember> {
      for (let i = 0; ; i++) yield { path: `f${i}`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n, size: 65536, data: () => Readable.from([Buffer.alloc(65536, i)]) };
    })();
    const stream = exportTarZst(endless, { signal: abort.signal });
    stream.once('data', () => abort.abort());
    const cancelled = await drain(stream);
    assert.equal(cancelled.ended, false);
    assert.ok(isWsdError(cancelled.error, 'CANCELLED'), String(cancelled.error));
  });
});
