import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ConfigIssue } from '../config/config-error.js';
import { pluginApiVersion, pluginKinds, supportedContracts, type AnyPlugin, type PluginKind } from './plugin.js';

/**
 * Loads third-party plugins named in config (`plugins:`) with dynamic `import()` and checks each export before the
 * kernel trusts it: the shape of a plugin definition, and the plugin API version it was built for.
 *
 * A module may export its plugin(s) as `default` (one plugin or an array), as `plugins` (an array) or as `plugin`.
 */
export async function loadPluginModules(
  specifiers: readonly string[],
  baseDir: string,
  issues: ConfigIssue[],
): Promise<Array<{ plugin: AnyPlugin; source: string }>> {
  const loaded: Array<{ plugin: AnyPlugin; source: string }> = [];
  for (const [index, specifier] of specifiers.entries()) {
    const at = `plugins[${index}]`;
    let namespace: Record<string, unknown>;
    try {
      namespace = (await import(resolveSpecifier(specifier, baseDir))) as Record<string, unknown>;
    } catch (error) {
      issues.push({ path: at, message: `cannot load plugin module "${specifier}": ${describe(error)}` });
      continue;
    }
    const candidates = exportedPlugins(namespace);
    if (candidates.length === 0) {
      issues.push({
        path: at,
        message: `plugin module "${specifier}" exports no plugin (expected a default export, "plugins" or "plugin")`,
      });
      continue;
    }
    for (const [i, candidate] of candidates.entries()) {
      const problem = pluginShapeProblem(candidate);
      if (problem) {
        const which = candidates.length > 1 ? ` (export #${i + 1})` : '';
        issues.push({ path: at, message: `plugin module "${specifier}"${which} ${problem}` });
      } else {
        loaded.push({ plugin: candidate as AnyPlugin, source: specifier });
      }
    }
  }
  return loaded;
}

/** A file path (relative to the config file) or a package name resolved from the config file's folder. */
function resolveSpecifier(specifier: string, baseDir: string): string {
  if (specifier.startsWith('.') || path.isAbsolute(specifier) || specifier.startsWith('file:')) {
    return specifier.startsWith('file:') ? specifier : pathToFileURL(path.resolve(baseDir, specifier)).href;
  }
  try {
    return pathToFileURL(createRequire(path.join(baseDir, 'noop.js')).resolve(specifier)).href;
  } catch {
    // ESM-only packages without a "require" export condition: let Node's own resolution try from wsd's location.
    return specifier;
  }
}

function exportedPlugins(namespace: Record<string, unknown>): unknown[] {
  const fromValue = (value: unknown): unknown[] => (Array.isArray(value) ? value : value === undefined ? [] : [value]);
  const def = namespace.default;
  // A CommonJS module's `module.exports = { plugins: [...] }` arrives as `default`.
  if (def && typeof def === 'object' && !Array.isArray(def) && !('kind' in def)) {
    const inner = def as Record<string, unknown>;
    return [...fromValue(inner.plugins), ...fromValue(inner.plugin)];
  }
  if (def !== undefined) return fromValue(def);
  return [...fromValue(namespace.plugins), ...fromValue(namespace.plugin)];
}

/** Why `value` is not a usable plugin definition, or undefined when it is. */
export function pluginShapeProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return `exports ${typeof value}, not a plugin object`;
  const p = value as Record<string, unknown>;
  if (typeof p.apiVersion !== 'number') {
    return 'has no apiVersion (declare it with definePlugin() or set apiVersion: ' + `${pluginApiVersion})`;
  }
  if (p.apiVersion !== pluginApiVersion) {
    const name = typeof p.kind === 'string' && typeof p.id === 'string' ? `${p.kind}/${p.id} ` : '';
    return `plugin ${name}was built for plugin API version ${p.apiVersion}, but this wsd supports version ${pluginApiVersion}`;
  }
  if (typeof p.kind !== 'string' || !(pluginKinds as readonly string[]).includes(p.kind)) {
    return `has kind ${JSON.stringify(p.kind)}; expected one of ${pluginKinds.join(', ')}`;
  }
  if (typeof p.id !== 'string' || !/^[a-z][a-z0-9-]*$/.test(p.id)) {
    return `has id ${JSON.stringify(p.id)}; expected a kebab-case string`;
  }
  const supported = supportedContracts[p.kind as PluginKind];
  if (typeof p.implements !== 'string') return `${p.kind}/${p.id} does not say which contract it implements (implements: '${supported[0]}')`;
  if (!supported.includes(p.implements)) {
    return `${p.kind}/${p.id} implements ${p.implements}, but this wsd serves ${supported.join(', ')} for ${p.kind} plugins`;
  }
  if (typeof p.create !== 'function') return `${p.kind}/${p.id} has no create() function`;
  if (p.configSchema !== undefined) {
    const std = (p.configSchema as { '~standard'?: { validate?: unknown } } | null)?.['~standard'];
    if (typeof std?.validate !== 'function') {
      return `${p.kind}/${p.id} has a configSchema that is not a Standard Schema (zod 4, valibot, arktype)`;
    }
  }
  if (p.requires !== undefined) {
    if (typeof p.requires !== 'object' || p.requires === null) return `${p.kind}/${p.id} has requires that is not an object`;
    for (const [name, token] of Object.entries(p.requires)) {
      if (typeof (token as { id?: unknown })?.id !== 'string') {
        return `${p.kind}/${p.id} requires "${name}" with something that is not a token`;
      }
    }
  }
  return undefined;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ERR_MODULE_NOT_FOUND' ? `module not found (${error.message.split('\n')[0]})` : error.message;
  }
  return String(error);
}
