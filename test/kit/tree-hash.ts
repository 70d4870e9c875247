import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';

export interface TreeEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: string;
  size?: number;
  sha256?: string;
  target?: string;
  mtime?: number;
  /** For hard-linked files: the first path (in sorted order) sharing this inode. */
  linkOf?: string;
}

/**
 * Everything that makes two trees "the same" to a user: paths, types, permission bits, file contents (sha256),
 * symlink targets, whole-second mtimes of files, and which files are hard links of each other.
 */
export async function treeManifest(root: string, options: { ignore?: (relative: string) => boolean } = {}): Promise<TreeEntry[]> {
  const entries: TreeEntry[] = [];
  const inodes = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const full = path.join(dir, name);
      const rel = path.relative(root, full);
      if (options.ignore?.(rel)) continue;
      const info = await lstat(full);
      const mode = (info.mode & 0o7777).toString(8);
      if (info.isSymbolicLink()) {
        entries.push({ path: rel, type: 'symlink', mode: '', target: await readlink(full) });
      } else if (info.isDirectory()) {
        entries.push({ path: rel, type: 'dir', mode });
        await walk(full);
      } else if (info.isFile()) {
        const entry: TreeEntry = { path: rel, type: 'file', mode, size: info.size, sha256: await fileSha256(full), mtime: Math.floor(info.mtimeMs / 1000) };
        if (info.nlink > 1) {
          const key = `${info.dev}:${info.ino}`;
          const first = inodes.get(key);
          if (first) entry.linkOf = first;
          else inodes.set(key, rel);
        }
        entries.push(entry);
      } else {
        entries.push({ path: rel, type: 'other', mode });
      }
    }
  };
  await walk(root);
  return entries;
}

async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
