import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from './config/package-root.js';

/** wsd's version, from its package.json. */
export const wsdVersion: string = (
  JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }
).version;
