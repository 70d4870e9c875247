import { constants as fsConstants } from 'node:fs';
import { chown, lstat, mkdir, open, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { WsdError } from '../errors.js';

/**
 * Resolves a path from a request (checkout location, download target) inside `dir`, or throws INVALID_ARGUMENT
 * naming `field`: absolute paths and `..` that leave the folder are refused.
 */
export function insideFolder(dir: string, relative: string, field: string): string {
  if (path.isAbsolute(relative)) throw new WsdError('INVALID_ARGUMENT', `${field} ${JSON.stringify(relative)} must be relative to the workspace folder`, { field });
  const full = path.resolve(dir, relative);
  if (full !== dir && !full.startsWith(`${dir}${path.sep}`)) {
    throw new WsdError('INVALID_ARGUMENT', `${field} ${JSON.stringify(relative)} leaves the workspace folder`, { field });
  }
  return full;
}

/**
 * Creates the folders from `root` down to `dir` one by one, never passing through anything that is not a real
 * folder (content may have planted a symlink there). Returns the offending path relative to `root`, or undefined
 * when `dir` is now a real folder. Folders it creates are given to `owner`.
 */
export async function makeRealFolders(root: string, dir: string, owner?: { uid: number; gid: number }): Promise<string | undefined> {
  let current = root;
  for (const segment of path.relative(root, dir).split(path.sep).filter(Boolean)) {
    current = path.join(current, segment);
    const info = await lstat(current).catch(() => undefined);
    if (!info) {
      await mkdir(current);
      if (owner) await chown(current, owner.uid, owner.gid);
    } else if (!info.isDirectory()) {
      return path.relative(root, current);
    }
  }
  return undefined;
}

/** Creates `file` afresh for writing: an existing entry (a planted symlink included) is removed, never followed. */
export async function createExclusive(file: string, owner?: { uid: number; gid: number }): Promise<FileHandle> {
  await unlink(file).catch(() => {});
  const handle = await open(file, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o644);
  if (owner) await handle.chown(owner.uid, owner.gid);
  return handle;
}
