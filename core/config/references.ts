import { readFileSync } from 'node:fs';
import path from 'node:path';
import { errnoCode } from '../errors.js';
import { joinPath, type ConfigIssue } from './config-error.js';

/**
 * Resolves secret and environment references in a raw config so secrets need not sit in the file:
 * - `${NAME}` or `${NAME:-fallback}` inside any string is replaced by the environment variable (`$${` is a literal `${`);
 * - a value written as `{ fromEnv: NAME }` becomes that variable's value;
 * - a value written as `{ fromFile: path }` becomes the file's content without its trailing newline (the usual
 *   shape of a mounted Kubernetes secret); a relative path is relative to the config file.
 * A variable that is not set (and has no fallback) or a file that cannot be read is an issue at the value's path.
 */
export function resolveReferences(
  raw: unknown,
  options: { env: NodeJS.ProcessEnv; baseDir: string },
  issues: ConfigIssue[],
): unknown {
  const walk = (value: unknown, at: string): unknown => {
    if (typeof value === 'string') return interpolate(value, at);
    if (Array.isArray(value)) return value.map((item, i) => walk(item, joinPath(at, [i])));
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value);
    if (entries.length === 1) {
      const [key, ref] = entries[0]!;
      if (key === 'fromEnv' && typeof ref === 'string') return fromEnv(ref, at);
      if (key === 'fromFile' && typeof ref === 'string') return fromFile(ref, at);
    }
    return Object.fromEntries(entries.map(([key, item]) => [key, walk(item, joinPath(at, [key]))]));
  };

  const interpolate = (text: string, at: string): string =>
    text.replace(/\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (match, name?: string, fallback?: string) => {
      if (match === '$${') return '${';
      const value = options.env[name!];
      if (value !== undefined && value !== '') return value;
      if (fallback !== undefined) return fallback;
      issues.push({ path: at, message: `environment variable ${name} is not set` });
      return match; // left as written, so no second, confusing issue follows from an empty value
    });

  const fromEnv = (name: string, at: string): string | undefined => {
    const value = options.env[name];
    if (value === undefined) issues.push({ path: at, message: `environment variable ${name} (fromEnv) is not set` });
    return value;
  };

  const fromFile = (file: string, at: string): string | undefined => {
    const full = path.resolve(options.baseDir, file);
    try {
      return readFileSync(full, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      issues.push({ path: at, message: `cannot read ${full} (fromFile): ${errnoCode(error) ?? String(error)}` });
      return undefined;
    }
  };

  return walk(raw, '');
}
