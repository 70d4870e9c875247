import { constants as fsConstants } from 'node:fs';
import { lchown, lstat, mkdir, open, readdir, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { WsdError } from '../errors.js';

/**
 * Resolves a path from a request (checkout location, download target) inside `dir`, or throws INVALID_ARGUMENT
 * naming `field`: absolute paths and `..` that leave the folder are refused.
 */
export function insideFolder(dir: string, relative: string, field: string): string {
  // eslint-disable-next-line no-control-regex
  if (typeof relative !== 'string' || /[\u0000-\u001f\u007f]/.test(relative) || relative.length > 4096) {
    throw new WsdError('INVALID_ARGUMENT', `${field} must be a path of at most 4096 characters without control characters`, { field });
  }
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
      // lchown: a folder swapped for a symlink right after the mkdir must not hand its target to the owner.
      if (owner) await lchown(current, owner.uid, owner.gid);
    } else if (!info.isDirectory()) {
      return path.relative(root, current);
    }
  }
  return undefined;
}

/**
 * Resolves `relative` beneath `root` on disk, for a writer: `insideFolder` for the text, then every folder on the
 * way is made a real folder (created when missing, given to `owner`), never passed through a symlink or a file —
 * content written by an earlier initializer, a restore or the user can plant one (`evil → /tmp`). `leaf` says what
 * the last entry may be: `new-folder` (absent, or an empty real folder: a clone target), `folder` (an existing real
 * folder: a checkout to work in). FAILED_PRECONDITION naming `field` when the content is in the way.
 */
export async function resolveInside(
  root: string,
  relative: string,
  field: string,
  options: { leaf: 'new-folder' | 'folder'; owner?: { uid: number; gid: number } },
): Promise<string> {
  const target = insideFolder(root, relative, field);
  const blocked = await makeRealFolders(root, path.dirname(target), options.owner);
  const refuse = (why: string) => new WsdError('FAILED_PRECONDITION', `${field} ${JSON.stringify(relative)}: ${why}`, { field });
  if (blocked) throw refuse(`${JSON.stringify(blocked)} in the workspace is not a real folder (a symlink or a file); nothing is written through it`);
  if (target === root) return target;
  const info = await lstat(target).catch(() => undefined);
  if (options.leaf === 'folder') {
    if (!info?.isDirectory()) throw refuse(info ? 'is not a real folder in the workspace (a symlink or a file)' : 'does not exist in the workspace');
  } else if (info) {
    if (!info.isDirectory()) throw refuse('exists and is not a real folder (a symlink or a file)');
    if ((await readdir(target)).length > 0) throw refuse('exists and is not empty');
  }
  return target;
}

/**
 * For readers: `relative` beneath `root` when every entry on the way, the last included, is a real folder on disk
 * (no symlink, nothing missing); undefined otherwise. Creates nothing.
 */
export async function realFolderInside(root: string, relative: string): Promise<string | undefined> {
  let target: string;
  try {
    target = insideFolder(root, relative, 'path');
  } catch {
    return undefined;
  }
  let current = root;
  for (const segment of path.relative(root, target).split(path.sep).filter(Boolean)) {
    current = path.join(current, segment);
    const info = await lstat(current).catch(() => undefined);
    if (!info?.isDirectory()) return undefined;
  }
  return target;
}

/** Creates `file` afresh for writing: an existing entry (a planted symlink included) is removed, never followed. */
export async function createExclusive(file: string, owner?: { uid: number; gid: number }): Promise<FileHandle> {
  await unlink(file).catch(() => {});
  const handle = await open(file, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o644);
  if (owner) await handle.chown(owner.uid, owner.gid);
  return handle;
}
