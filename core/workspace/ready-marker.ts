import { rename } from 'node:fs/promises';
import path from 'node:path';
import { createExclusive, insideFolder, makeRealFolders } from '../content/inside-folder.js';
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
