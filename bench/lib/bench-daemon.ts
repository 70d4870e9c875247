import { mkdirSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { WsdClient } from '../../core/api/client.js';
import { startDaemonProcess, testDaemonConfig, type DaemonProcess } from '../../test/kit/daemon-process.js';
import type { StartedMinio } from '../../test/kit/servers/minio.js';
import { fillFolder, type TreeInfo } from './tree.js';

/**
 * A real `wsd run` from dist/ (the test kit's daemon process), driven only through its gRPC API. Periodic backups
 * are off: nothing but the measured call may write to storage while it runs.
 */
export interface BenchDaemon {
  daemon: DaemonProcess;
  client: WsdClient;
  dataDir: string;
  /** Where stored bytes are counted: the local storage root, or MinIO's data folder. */
  storageDir: string;
  pid: number;
  folder(id: string): string;
  /** InitWorkspace `empty`, then the tree put in its folder (as a user's work would be). */
  createFilled(id: string, owner: string, tree: TreeInfo): Promise<string>;
  /** InitWorkspace from the latest backup of `owner`/`metaId`; resolves when the workspace is ready. */
  restore(id: string, owner: string, metaId: string): Promise<void>;
  dispose(id: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Ends `daemon` (SIGKILL) if the bench exits while it runs — a failed round, Ctrl-C — so no daemon outlives the
 * bench; its own stop() still ends it gracefully.
 */
export function endWithBench(daemon: DaemonProcess): DaemonProcess {
  const kill = () => daemon.child.kill('SIGKILL');
  process.once('exit', kill);
  daemon.child.once('exit', () => process.off('exit', kill));
  return daemon;
}

export async function startBenchDaemon(dir: string, options: { minio?: StartedMinio; keep?: number } = {}): Promise<BenchDaemon> {
  const storage = options.minio ? `storage: ${JSON.stringify({ plugin: 's3', s3: options.minio.storageConfig })}\n` : '';
  const extra = `${storage}backup:\n  period: 0\n  keep: ${options.keep ?? 3}\n`;
  mkdirSync(dir, { recursive: true });
  const daemon = endWithBench(await startDaemonProcess({ args: ['--config', testDaemonConfig(dir, extra)], cwd: dir }));
  const client = new WsdClient({ address: daemon.grpcAddress });
  const dataDir = path.join(dir, 'data');
  const folder = (id: string) => path.join(dataDir, 'workspaces', id);
  return {
    daemon,
    client,
    dataDir,
    storageDir: options.minio ? options.minio.dataDir : path.join(dataDir, 'storage'),
    pid: daemon.child.pid!,
    folder,
    async createFilled(id, owner, tree) {
      await client.initWorkspace({ id, metadata: { owner, meta_id: id }, initializer: { empty: {} } });
      fillFolder(folder(id), tree);
      return folder(id);
    },
    async restore(id, owner, metaId) {
      await client.initWorkspace({ id, metadata: { owner, meta_id: metaId }, initializer: { backup: {} } });
    },
    async dispose(id) {
      await client.disposeWorkspace(id, { backup: false });
    },
    async stop() {
      client.close();
      await daemon.stop();
    },
  };
}

/** A file in storage as listed: its size, and what tells a rewrite of the same size apart (inode, mtime). */
export interface StoredFile {
  size: number;
  version: string;
}

/** Every file under `dir`: what a storage backend holds. */
export async function storedFiles(dir: string): Promise<Map<string, StoredFile>> {
  const files = new Map<string, StoredFile>();
  const walk = async (current: string): Promise<void> => {
    const entries = await readdir(current, { withFileTypes: true }).catch(() => []);
    await Promise.all(
      entries.map(async (entry) => {
        const full = path.join(current, entry.name);
        if (entry.isDirectory()) return walk(full);
        const info = await lstat(full).catch(() => undefined); // deleted meanwhile (retention)
        if (info) files.set(full, { size: info.size, version: `${info.ino}:${info.mtimeMs}:${info.size}` });
      }),
    );
  };
  await walk(dir);
  return files;
}

/**
 * Bytes written between two listings: files that are new or were rewritten (a pointer like `latest.json` is
 * replaced by one of the same size), counted whole. Not the net growth, which retention (`keep`) can make zero or
 * negative while a full copy was uploaded.
 */
export function bytesAdded(before: Map<string, StoredFile>, after: Map<string, StoredFile>): number {
  return filesAdded(before, after).reduce((total, file) => total + file.size, 0);
}

/** The files behind {@link bytesAdded}, paths relative to `root`. */
export function filesAdded(before: Map<string, StoredFile>, after: Map<string, StoredFile>, root = ''): Array<{ path: string; size: number }> {
  const added: Array<{ path: string; size: number }> = [];
  for (const [file, { size, version }] of after) if (before.get(file)?.version !== version) added.push({ path: root ? path.relative(root, file) : file, size });
  return added;
}

/** Bytes in the files under `dir`. */
export async function storedBytes(dir: string): Promise<number> {
  let total = 0;
  for (const { size } of (await storedFiles(dir)).values()) total += size;
  return total;
}
