import { rename } from 'node:fs/promises';
import path from 'node:path';
import { excludeFromGit } from '../content/git-exclude.js';
import { createExclusive, insideFolder, makeRealFolders, realFolderInside } from '../content/inside-folder.js';
import type { InitializeResult } from '../initializer/content-initializer.js';
import type { Logger } from '../observability/logger.js';

/**
 * `{ source, metrics }` at the ready-marker path (`marker`, relative to the folder; empty: none), written atomically
 * (temp + rename). The folder already holds user-controlled content, so nothing is followed: a parent that is not a
 * real folder (a planted symlink) skips the marker, the temp file is created exclusively without following links,
 * and only folders wsd creates itself are given to the workspace user.
 */
export async function writeReadyMarker(options: { folder: string; marker: string; result: InitializeResult; owner?: { uid: number; gid: number }; log: Logger }): Promise<void> {
  const { folder, marker, result, owner, log } = options;
  if (!marker) return;
  const file = insideFolder(folder, marker, 'workspaces.readyMarker');
  const blocked = await makeRealFolders(folder, path.dirname(file), owner);
  if (blocked) {
    log.warn('ready marker not written: its folder is not a real folder in the content', { path: blocked });
    return;
  }
  const tmp = `${file}.wsd-tmp`;
  const handle = await createExclusive(tmp, owner);
  try {
    await handle.writeFile(`${JSON.stringify({ source: result.source, metrics: result.stats })}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file); // replaces a symlink at `file` itself; never writes through it
}

/**
 * Keeps the ready marker out of the user's `git status`: for each checkout (locations relative to the folder,
 * `''` the folder itself) that holds the marker, its path is added to that repository's `.git/info/exclude`
 * (anchored, glob characters escaped; once — a restored backup carries the line already). Best effort: a checkout
 * that is not a plain repository is skipped, and a failure is logged, never fails the init.
 */
export async function excludeReadyMarkerFromGit(options: { folder: string; marker: string; checkouts: string[]; owner?: { uid: number; gid: number }; log: Logger }): Promise<void> {
  const { folder, marker, checkouts, owner, log } = options;
  if (!marker) return;
  const file = insideFolder(folder, marker, 'workspaces.readyMarker');
  for (const location of new Set(checkouts)) {
    const checkout = await realFolderInside(folder, location);
    if (!checkout) continue;
    if (!file.startsWith(`${checkout}${path.sep}`)) continue; // the marker is not in this checkout
    const relative = path.relative(checkout, file);
    const pattern = `/${relative.split(path.sep).join('/').replace(/([\\*?[\]!# ])/g, '\\$1')}`;
    try {
      const outcome = await excludeFromGit(checkout, pattern, owner);
      if (outcome === 'added') log.debug('ready marker excluded from git', { checkout: location, pattern });
    } catch (error) {
      log.warn('cannot exclude the ready marker from git status', { checkout: location, error: error as Error });
    }
  }
}
