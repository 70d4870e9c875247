import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
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
 * Synchronous on purpose: for 50k small files it is several times faster than streams per file.
 */
export async function treeManifest(root: string, options: { ignore?: (relative: string) => boolean } = {}): Promise<TreeEntry[]> {
  const entries: TreeEntry[] = [];
  const inodes = new Map<string, string>();
  const buffer = Buffer.allocUnsafe(1024 * 1024);
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const rel = path.relative(root, full);
      if (options.ignore?.(rel)) continue;
      const info = lstatSync(full);
      const mode = (info.mode & 0o7777).toString(8);
      if (info.isSymbolicLink()) {
        entries.push({ path: rel, type: 'symlink', mode: '', target: readlinkSync(full) });
      } else if (info.isDirectory()) {
        entries.push({ path: rel, type: 'dir', mode });
        walk(full);
      } else if (info.isFile()) {
        const entry: TreeEntry = { path: rel, type: 'file', mode, size: info.size, sha256: fileSha256(full, buffer), mtime: Math.floor(info.mtimeMs / 1000) };
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
  walk(root);
  return entries;
}

/** The first difference between two manifests, or undefined — readable where a deep-equal diff of 50k entries is not. */
export function firstDifference(a: TreeEntry[], b: TreeEntry[]): string | undefined {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = JSON.stringify(a[i]);
    const y = JSON.stringify(b[i]);
    if (x !== y) return `entry ${i}: ${x ?? '(none)'} vs ${y ?? '(none)'}`;
  }
  return undefined;
}

function fileSha256(file: string, buffer: Buffer): string {
  const hash = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0; ) hash.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}
