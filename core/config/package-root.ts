import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder holding wsd's package.json, found from this file whether run from `dist/` or from sources. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the wsd package root');
    dir = parent;
  }
  return dir;
}

export const embeddedConfigPath = (): string => path.join(packageRoot(), 'config', 'wsd.yaml');
