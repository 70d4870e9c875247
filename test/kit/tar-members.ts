import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { TarMember } from '../../core/content/tar-writer.js';

/**
 * The members of a real folder for `tarStream`, root first, then depth-first in name order: what a backup's tree
 * object hands the writer. A file that shares its inode with an earlier one becomes a hard link to it. Mtimes to
 * the nanosecond, owners and modes as `lstat` reports them.
 */
export async function* treeMembers(root: string): AsyncGenerator<TarMember> {
  const inodes = new Map<string, string>();
  const member = async (full: string, rel: string): Promise<TarMember | undefined> => {
    const info = await lstat(full, { bigint: true });
    const base = { path: rel, mode: Number(info.mode & 0o7777n), uid: Number(info.uid), gid: Number(info.gid), mtimeNs: info.mtimeNs };
    if (info.isDirectory()) return { ...base, type: 'dir' };
    if (info.isSymbolicLink()) return { ...base, type: 'symlink', linkTarget: await readlink(full) };
    if (info.isFIFO()) return { ...base, type: 'fifo' };
    if (info.isCharacterDevice() || info.isBlockDevice()) {
      const rdev = Number(info.rdev);
      return { ...base, type: info.isCharacterDevice() ? 'char' : 'block', devMajor: (rdev >> 8) & 0xfff, devMinor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00) };
    }
    if (!info.isFile()) return undefined; // sockets: tar skips them too
    if (info.nlink > 1n) {
      const key = `${info.dev}:${info.ino}`;
      const first = inodes.get(key);
      if (first !== undefined) return { ...base, type: 'hardlink', linkTarget: first };
      inodes.set(key, rel);
    }
    return { ...base, type: 'file', size: Number(info.size), data: () => createReadStream(full) };
  };
  yield (await member(root, ''))!;
  async function* walk(dir: string, prefix: string): AsyncGenerator<TarMember> {
    for (const name of (await readdir(dir)).sort()) {
      const full = path.join(dir, name);
      const rel = prefix ? `${prefix}/${name}` : name;
      const m = await member(full, rel);
      if (!m) continue;
      yield m;
      if (m.type === 'dir') yield* walk(full, rel);
    }
  }
  yield* walk(root, '');
}
