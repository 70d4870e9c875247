import path from 'node:path';
import { cosmiconfig } from 'cosmiconfig';
import { PluginCatalog, planPlugins, type CatalogEntry, type PlannedPlugin, type PluginSelection } from '../kernel/registry.js';
import { loadPluginModules } from '../kernel/plugin-loader.js';
import { pluginName, singleSlotKinds, type PluginKind } from '../kernel/plugin.js';
import type { Token } from '../kernel/token.js';
import { ConfigError, issuesAt, type ConfigIssue } from './config-error.js';
import { embeddedConfigPath } from './package-root.js';
import { resolveReferences } from './references.js';
import { rootConfigSchema, type RootConfig } from './root-schema.js';

/** Files searched for in the current folder when no `--config` is given, in this order. */
export const configSearchPlaces = [
  'wsd.yaml',
  'wsd.yml',
  'wsd.config.yaml',
  'wsd.config.yml',
  'wsd.config.json',
  '.wsdrc',
  '.wsdrc.yaml',
  '.wsdrc.json',
  'package.json',
];

/** A config that passed every check: root schema, plugin modules, every plugin section, the plugin graph. */
export interface WsdConfig {
  /** The file it came from, or `embedded default (<path>)`. */
  source: string;
  /** Relative paths in the config are relative to this folder. */
  baseDir: string;
  root: RootConfig;
  paths: { dataDir: string; workingArea: string; stateDir: string };
  catalog: PluginCatalog;
  /** Enabled plugins in start order. */
  plan: PlannedPlugin[];
  /** Validated config (defaults applied) of every enabled plugin, by `kind/id`. */
  pluginConfigs: Map<string, unknown>;
}

export interface LoadConfigOptions {
  /** `--config`; when absent the search places in `cwd`, then the embedded default. */
  configPath?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  builtins: readonly CatalogEntry[];
  /** Tokens the kernel provides itself, so `requires` on them is satisfied. */
  coreTokens: Iterable<Token<unknown>>;
}

/** Reads, resolves and validates a config; throws one {@link ConfigError} listing every issue found. */
export async function loadConfig(options: LoadConfigOptions): Promise<WsdConfig> {
  const cwd = options.cwd ?? process.cwd();
  const { raw, source, baseDir } = await readRawConfig(options.configPath, cwd);
  return validateConfig(raw, { ...options, source, baseDir });
}

async function readRawConfig(configPath: string | undefined, cwd: string) {
  const explorer = cosmiconfig('wsd', { searchPlaces: configSearchPlaces, searchStrategy: 'none', cache: false });
  try {
    const found = configPath ? await explorer.load(path.resolve(cwd, configPath)) : await explorer.search(cwd);
    if (found) {
      return { raw: found.isEmpty ? {} : (found.config as unknown), source: found.filepath, baseDir: path.dirname(found.filepath) };
    }
    const embedded = embeddedConfigPath();
    const loaded = await explorer.load(embedded);
    // The embedded default's relative paths follow the working directory, like any tool's defaults.
    return { raw: loaded?.config as unknown, source: `embedded default (${embedded})`, baseDir: cwd };
  } catch (error) {
    const file = configPath ? path.resolve(cwd, configPath) : cwd;
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (error as Error).message;
    throw new ConfigError([{ path: '', message: `cannot read config ${file}: ${reason}` }]);
  }
}

/** Validates an already-parsed config object (what `loadConfig` does after reading the file). */
export async function validateConfig(
  raw: unknown,
  options: Omit<LoadConfigOptions, 'configPath' | 'cwd'> & { source: string; baseDir: string },
): Promise<WsdConfig> {
  const issues: ConfigIssue[] = [];
  const resolved = resolveReferences(raw ?? {}, { env: options.env ?? process.env, baseDir: options.baseDir }, issues);
  const parsed = rootConfigSchema.safeParse(resolved);
  if (!parsed.success) {
    issues.push(...issuesAt('', parsed.error.issues));
  }
  // Plugin sections are checked even when the root has problems, so the operator sees everything at once.
  const root = parsed.success ? parsed.data : salvageRoot(resolved);

  const catalog = new PluginCatalog();
  const entries = [...options.builtins, ...(await loadPluginModules(root.plugins, options.baseDir, issues))];
  for (const entry of entries) {
    try {
      catalog.add(entry.plugin, entry.source);
    } catch (error) {
      issues.push(...((error as ConfigError).issues ?? [{ path: 'plugins', message: String(error) }]));
    }
  }

  const selection: PluginSelection[] = [];
  const pluginConfigs = new Map<string, unknown>();
  const check = async (kind: PluginKind, id: string, section: unknown, at: string, enabled: boolean) => {
    const entry = catalog.get(kind, id);
    if (!entry) {
      const known = catalog.ids(kind);
      issues.push({ path: at, message: `unknown ${kind} plugin "${id}" (known: ${known.join(', ') || 'none'})` });
      return;
    }
    const value = await validateSection(entry, section ?? {}, at, issues);
    if (enabled) {
      selection.push({ kind, id, configPath: at });
      pluginConfigs.set(pluginName(entry.plugin), value);
    }
  };
  for (const kind of singleSlotKinds) {
    const { plugin: chosen, ...sections } = root[kind as 'storage' | 'quota'];
    await check(kind, chosen, sections[chosen], `${kind}.${chosen}`, true);
    // Sections of plugins not chosen are still validated: a typo there should not wait for the day it is switched on.
    for (const [id, section] of Object.entries(sections)) {
      if (id !== chosen) await check(kind, id, section, `${kind}.${id}`, false);
    }
  }
  for (const kind of ['initializer', 'health'] as const) {
    const key = kind === 'initializer' ? 'initializers' : 'health';
    for (const [id, section] of Object.entries(root[key])) await check(kind, id, section, `${key}.${id}`, true);
  }

  const dataDir = path.resolve(options.baseDir, root.dataDir);
  const workingArea = root.workingArea ? path.resolve(options.baseDir, root.workingArea) : path.join(dataDir, 'workspaces');
  // State lives apart from content, where no workspace id can name it (ids name folders in the working area).
  const stateDir = path.join(dataDir, 'state');
  const within = (child: string, parent: string) => {
    const relative = path.relative(parent, child);
    return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
  };
  if (within(dataDir, workingArea) || within(workingArea, stateDir)) {
    issues.push({ path: 'workingArea', message: `must be a folder of its own, not ${dataDir} itself or inside ${stateDir}: workspace ids name folders in it, and state files live in ${stateDir}` });
  }
  if (issues.length > 0) throw new ConfigError(issues, options.source);
  let plan: PlannedPlugin[];
  try {
    plan = planPlugins(catalog, selection, options.coreTokens);
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError(error.issues, options.source);
    throw error;
  }
  return { source: options.source, baseDir: options.baseDir, root, paths: { dataDir, workingArea, stateDir }, catalog, plan, pluginConfigs };
}

async function validateSection(entry: CatalogEntry, section: unknown, at: string, issues: ConfigIssue[]): Promise<unknown> {
  const schema = entry.plugin.configSchema;
  if (!schema) {
    const empty = section === null || (typeof section === 'object' && Object.keys(section as object).length === 0);
    if (!empty) issues.push({ path: at, message: `${pluginName(entry.plugin)} takes no config` });
    return {};
  }
  const result = await schema['~standard'].validate(section === null ? {} : section);
  if (result.issues) {
    issues.push(...issuesAt(at, result.issues));
    return undefined;
  }
  return result.value;
}

/** Best-effort root values from an invalid config, so plugin sections can still be checked. */
function salvageRoot(raw: unknown): RootConfig {
  const obj = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  const pick = <T>(key: string, fallback: T, ok: (v: unknown) => boolean): T => (ok(obj[key]) ? (obj[key] as T) : fallback);
  const isObj = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  const slot = (key: string, fallback: string) => {
    const section = pick<Record<string, unknown>>(key, {}, isObj);
    return { ...section, plugin: typeof section.plugin === 'string' ? section.plugin : fallback };
  };
  const salvaged = rootConfigSchema.safeParse({
    plugins: pick('plugins', [], (v) => Array.isArray(v) && v.every((s) => typeof s === 'string' && s)),
    storage: slot('storage', 'local'),
    quota: slot('quota', 'none'),
    initializers: pick('initializers', undefined, isObj),
    health: pick('health', undefined, isObj),
  });
  return salvaged.success ? salvaged.data : rootConfigSchema.parse({});
}
