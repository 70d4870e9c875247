import { ConfigError, type ConfigIssue } from '../config/config-error.js';
import { contentInitializerToken } from '../initializer/content-initializer.js';
import { healthCheckToken } from '../health/health-check.js';
import { quotaStrategyToken } from '../quota/quota-strategy.js';
import { storageBackendToken } from '../storage/storage-backend.js';
import { pluginName, type AnyPlugin, type PluginKind } from './plugin.js';
import type { Token } from './token.js';

/** The token each kind's instances are registered under. */
export const kindTokens: Record<PluginKind, Token<unknown>> = {
  storage: storageBackendToken,
  quota: quotaStrategyToken,
  initializer: contentInitializerToken,
  health: healthCheckToken,
};

const kindOrder: Record<PluginKind, number> = { storage: 0, quota: 1, initializer: 2, health: 3 };

/** Where a plugin definition came from: `built-in`, or the module specifier it was loaded from. */
export interface CatalogEntry {
  plugin: AnyPlugin;
  source: string;
}

/**
 * Every plugin that could be enabled: the built-ins plus those loaded from modules named in config.
 * A second plugin with the same `kind/id` is refused with a message naming both sources.
 */
export class PluginCatalog {
  readonly #entries = new Map<string, CatalogEntry>();

  constructor(entries: Iterable<CatalogEntry> = []) {
    for (const entry of entries) this.add(entry.plugin, entry.source);
  }

  add(plugin: AnyPlugin, source: string): void {
    const name = pluginName(plugin);
    const existing = this.#entries.get(name);
    if (existing) {
      throw new ConfigError([
        { path: 'plugins', message: `duplicate plugin ${name}: defined by ${existing.source} and by ${source}` },
      ]);
    }
    this.#entries.set(name, { plugin, source });
  }

  get(kind: PluginKind, id: string): CatalogEntry | undefined {
    return this.#entries.get(`${kind}/${id}`);
  }

  ids(kind: PluginKind): string[] {
    return [...this.#entries.values()].filter((e) => e.plugin.kind === kind).map((e) => e.plugin.id);
  }

  all(): CatalogEntry[] {
    return [...this.#entries.values()];
  }
}

/** A plugin the config enables, with the config path that enabled it (for messages). */
export interface PluginSelection {
  kind: PluginKind;
  id: string;
  configPath: string;
}

export interface PlannedPlugin extends CatalogEntry {
  configPath: string;
  /** Names (`kind/id`) of the enabled plugins this one needs, which start before it. */
  dependsOn: string[];
}

/**
 * Orders the selected plugins so every plugin comes after the providers of what it `requires`.
 * Fails with one {@link ConfigError} listing every unknown plugin, missing dependency and cycle.
 *
 * @param coreTokens tokens the kernel itself provides (logger, metrics, paths); always satisfied.
 */
export function planPlugins(
  catalog: PluginCatalog,
  selection: readonly PluginSelection[],
  coreTokens: Iterable<Token<unknown>>,
): PlannedPlugin[] {
  // Tokens are matched by id, not identity, so a third-party plugin that bundles its own copy of wsd's token
  // definitions still finds the services it names.
  const coreIds = new Set([...coreTokens].map((t) => t.id));
  const issues: ConfigIssue[] = [];
  const chosen: PlannedPlugin[] = [];
  for (const sel of selection) {
    const entry = catalog.get(sel.kind, sel.id);
    if (!entry) {
      const known = catalog.ids(sel.kind);
      issues.push({
        path: sel.configPath,
        message: `unknown ${sel.kind} plugin "${sel.id}" (known: ${known.length ? known.join(', ') : 'none'})`,
      });
      continue;
    }
    chosen.push({ ...entry, configPath: sel.configPath, dependsOn: [] });
  }

  const providersOf = (token: Token<unknown>) => chosen.filter((p) => kindTokens[p.plugin.kind].id === token.id);
  for (const planned of chosen) {
    for (const [as, token] of Object.entries(planned.plugin.requires ?? {})) {
      if (coreIds.has(token.id)) continue;
      const providers = providersOf(token);
      const kindToken = Object.values(kindTokens).find((t) => t.id === token.id);
      if (providers.length === 0 && !kindToken?.multiple) {
        issues.push({
          path: planned.configPath,
          message: `${pluginName(planned.plugin)} requires ${token.id} (as "${as}"), which no enabled plugin provides`,
        });
      }
      for (const provider of providers) {
        const name = pluginName(provider.plugin);
        if (provider === planned) {
          issues.push({ path: planned.configPath, message: `${name} requires ${token.id}, which it provides itself` });
        } else if (!planned.dependsOn.includes(name)) {
          planned.dependsOn.push(name);
        }
      }
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);

  const ordered = topologicalOrder(chosen, issues);
  if (issues.length > 0) throw new ConfigError(issues);
  return ordered;
}

/** Kahn's algorithm; ties broken by kind (storage first) and config order, so start order is predictable. */
function topologicalOrder(plugins: PlannedPlugin[], issues: ConfigIssue[]): PlannedPlugin[] {
  const byName = new Map(plugins.map((p) => [pluginName(p.plugin), p]));
  const rank = (p: PlannedPlugin) => kindOrder[p.plugin.kind] * 1e6 + plugins.indexOf(p);
  const pending = new Map(plugins.map((p) => [p, new Set(p.dependsOn)]));
  const ordered: PlannedPlugin[] = [];
  while (pending.size > 0) {
    const ready = [...pending].filter(([, deps]) => deps.size === 0).map(([p]) => p);
    if (ready.length === 0) {
      const cycle = findCycle([...pending.keys()], byName);
      issues.push({
        path: cycle[0]?.configPath ?? '',
        message: `plugin dependency cycle: ${cycle.map((p) => pluginName(p.plugin)).join(' → ')}`,
      });
      return ordered;
    }
    ready.sort((a, b) => rank(a) - rank(b));
    const next = ready[0]!;
    ordered.push(next);
    pending.delete(next);
    for (const deps of pending.values()) deps.delete(pluginName(next.plugin));
  }
  return ordered;
}

/** Walks dependencies from a stuck plugin until one repeats; returns the loop, first element repeated at the end. */
function findCycle(stuck: PlannedPlugin[], byName: Map<string, PlannedPlugin>): PlannedPlugin[] {
  const path: PlannedPlugin[] = [];
  let current: PlannedPlugin | undefined = stuck[0];
  while (current && !path.includes(current)) {
    path.push(current);
    current = current.dependsOn.map((n) => byName.get(n)).find((p) => p && stuck.includes(p));
  }
  if (!current) return path;
  const loop = path.slice(path.indexOf(current));
  return [...loop, current];
}
