import { lstat, readdir } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import path from 'node:path';
import { Semaphore } from '../semaphore.js';

export interface ScannedEntry {
  path: string;
  stats: BigIntStats;
}

/**
 * Every entry below `root` (the root itself first, as `''`), each folder's names in byte order and a folder before
 * what it holds; `lstat`s run many at once (the walk is bound by system-call latency, not CPU: one at a time left
 * the event loop ~90 % idle). `exclude` lists relative paths left out. Entries that vanish while scanning are
 * skipped, as tar skips them. Sockets are skipped (tar ignores them too).
 */
export async function scanTree(root: string, options: { exclude?: string[]; concurrency?: number } = {}): Promise<ScannedEntry[]> {
  const excluded = new Set(options.exclude ?? []);
  const limit = new Semaphore(options.concurrency ?? 64);
  const rootStats = await lstat(root, { bigint: true });
  const walk = async (dir: string): Promise<ScannedEntry[][]> => {
    const raw = await limit.run(() => readdir(path.join(root, dir), { encoding: 'buffer' }).catch(gone));
    const names = raw.map((name) => {
      const text = name.toString('utf8');
      // Node reads a name that is not UTF-8 as replacement characters: such a file could not be read back by name.
      if (!Buffer.from(text, 'utf8').equals(name)) throw new NonUtf8NameError(dir === '' ? text : `${dir}/${text}`);
      return text;
    });
    names.sort(compareNames);
    const children = await Promise.all(
      names.map(async (name) => {
        const rel = dir === '' ? name : `${dir}/${name}`;
        if (excluded.has(rel)) return [];
        const stats = await limit.run(() => lstat(path.join(root, rel), { bigint: true }).catch(() => undefined));
        if (!stats || stats.isSocket()) return [];
        const own: ScannedEntry[] = [{ path: rel, stats }];
        return stats.isDirectory() ? [own, ...(await walk(rel))] : [own];
      }),
    );
    return children.flat();
  };
  return [{ path: '', stats: rootStats }, ...(await walk('')).flat()];
}

/** A name in the tree that is not valid UTF-8: the chunked format carries names as text (ADR 0007). */
export class NonUtf8NameError extends Error {
  constructor(readonly path: string) {
    super(`${JSON.stringify(path)} is not a valid UTF-8 name`);
  }
}

function gone(error: NodeJS.ErrnoException): Buffer[] {
  if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return []; // removed while scanning
  throw error;
}

/** Byte order of UTF-8 names, the order GNU tar and object stores use. */
function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
