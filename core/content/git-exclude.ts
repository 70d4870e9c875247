import { constants as fsConstants } from 'node:fs';
import { lstat, open, readlink, realpath, unlink } from 'node:fs/promises';
import path from 'node:path';
import { makeRealFolders, realFolderInside } from './inside-folder.js';

/** An exclude file larger than this is left alone (it is read whole to look for the line). */
const maxExcludeBytes = 1024 * 1024;

export type ExcludeOutcome = 'added' | 'present' | 'skipped';

/**
 * Adds `pattern` as a line of `<checkout>/.git/info/exclude` (git's per-repository ignore list, never committed)
 * unless a line equals it already. The checkout's content belongs to its user, so nothing is followed: `.git` and
 * `.git/info` must be real folders (a gitfile or a symlink there means another repository, or any folder of the
 * node: `skipped`), the file is opened without following a symlink, and after opening, the path the kernel
 * actually opened is checked to be that file (a folder swapped for a symlink meanwhile is caught, and a file this
 * call created elsewhere is removed again). What it creates is given to `owner`.
 */
export async function excludeFromGit(checkout: string, pattern: string, owner?: { uid: number; gid: number }): Promise<ExcludeOutcome> {
  const real = await realpath(checkout).catch(() => undefined);
  if (!real) return 'skipped';
  // `.git` a real folder (a gitfile or a symlink there means another repository, or any folder of the node), and
  // `info` made or found the same way core makes every folder in content it does not own.
  const dotGit = await realFolderInside(real, '.git');
  if (!dotGit) return 'skipped';
  const info = path.join(dotGit, 'info');
  if (await makeRealFolders(dotGit, info, owner)) return 'skipped';
  const file = path.join(info, 'exclude');
  const existing = await lstat(file).catch(() => undefined);
  if (existing && !existing.isFile()) return 'skipped';
  const flags = fsConstants.O_RDWR | fsConstants.O_APPEND | fsConstants.O_NOFOLLOW | (existing ? 0 : fsConstants.O_CREAT | fsConstants.O_EXCL);
  const handle = await open(file, flags, 0o644).catch((error: NodeJS.ErrnoException) => {
    // Appeared or turned into a symlink since the check: someone is racing us; leave it.
    if (error.code === 'EEXIST' || error.code === 'ELOOP') return undefined;
    throw error;
  });
  if (!handle) return 'skipped';
  try {
    const opened = await readlink(`/proc/self/fd/${handle.fd}`).catch(() => undefined);
    if (opened !== file) {
      if (!existing && opened) await unlink(opened).catch(() => {});
      return 'skipped';
    }
    if (!existing && owner) await handle.chown(owner.uid, owner.gid);
    const { size } = await handle.stat();
    if (size > maxExcludeBytes) return 'skipped';
    const buffer = Buffer.alloc(size);
    await handle.read(buffer, 0, size, 0);
    const text = buffer.toString('utf8');
    if (text.split('\n').some((line) => line.trim() === pattern)) return 'present';
    await handle.appendFile(`${text.length > 0 && !text.endsWith('\n') ? '\n' : ''}${pattern}\n`);
    return 'added';
  } finally {
    await handle.close();
  }
}
