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
