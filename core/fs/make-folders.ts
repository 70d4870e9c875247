import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { errnoCode } from '../errors.js';

/**
 * `mkdir -p`, one segment at a time. Node's own `mkdir(…, { recursive: true })` never returns under some virtual
 * filesystems (a data folder configured below `/proc/1/…` hung the daemon's start): this one fails with the first
 * real error instead. Existing folders are left as they are; `mode` applies to the folders it creates.
 */
export async function makeFolders(dir: string, mode = 0o755): Promise<void> {
  const missing: string[] = [];
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    try {
      await mkdir(current, { mode });
      break;
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'EEXIST') break;
      if (code !== 'ENOENT' || path.dirname(current) === current) throw error;
      missing.push(current);
    }
  }
  // What was missing, top down; a parent that cannot hold folders (ENOENT again under /proc) fails with its error.
  for (const folder of missing.reverse()) {
    try {
      await mkdir(folder, { mode });
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw error;
    }
  }
}
