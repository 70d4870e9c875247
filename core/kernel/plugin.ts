import type { ContentInitializer } from '../initializer/content-initializer.js';
import type { HealthCheck } from '../health/health-check.js';
import type { Logger } from '../observability/logger.js';
import type { QuotaStrategy } from '../quota/quota-strategy.js';
import type { StorageBackend } from '../storage/storage-backend.js';
import type { Resolved, Token } from './token.js';

/**
 * The plugin API version this kernel speaks. A plugin built for another version is refused at load time with a
 * message naming both versions; bump it only when a change to {@link PluginDefinition} or a contract would break
 * existing plugins.
 */
export const pluginApiVersion = 1;

/** The four extension points. Single-slot kinds have exactly one active plugin; the others any number. */
export const pluginKinds = ['storage', 'quota', 'initializer', 'health'] as const;
export type PluginKind = (typeof pluginKinds)[number];

/**
 * The contract versions this kernel serves, per kind, newest first. A plugin states the one it implements
 * (`implements: 'wsd.storage.v1'`); one whose contract is not listed is refused at load time, naming both. A
 * contract version changes when its interface changes incompatibly; the other kinds are unaffected.
 */
export const supportedContracts: Readonly<Record<PluginKind, readonly string[]>> = {
  storage: ['wsd.storage.v1'],
  quota: ['wsd.quota.v1'],
  initializer: ['wsd.initializer.v1'],
  health: ['wsd.health.v1'],
};
export const singleSlotKinds: readonly PluginKind[] = ['storage', 'quota'];

/** What `create` must return for each kind. */
export interface PluginInstances {
  storage: StorageBackend;
  quota: QuotaStrategy;
  initializer: ContentInitializer;
  health: HealthCheck;
}

/** Optional hooks on an instance: `start` runs in dependency order after all are created, `stop` in reverse. */
export interface PluginLifecycle {
  start?(): Promise<void> | void;
  stop?(): Promise<void> | void;
}

/**
 * A config schema: any Standard Schema (zod 4, valibot, arktype). Defaults should come from the schema so that
 * `wsd config print-defaults` can show them; a `description` per field becomes its comment there.
 */
export interface ConfigSchema<Output = unknown> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    validate(value: unknown): StandardResult<Output> | Promise<StandardResult<Output>>;
  };
}
export type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<{ readonly message: string; readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> }> };

export type Requirements = Record<string, Token<unknown>>;

/** Everything `create` gets. */
export interface PluginContext<Config, Req extends Requirements> {
  /** This plugin's config section, validated and with defaults applied. */
  config: Config;
  /** The services named in `requires`, resolved. */
  services: { [Name in keyof Req]: Resolved<Req[Name]> };
  /** A logger that tags each line with this plugin. */
  log: Logger;
  /** Daemon-wide folders, already absolute. */
  paths: { dataDir: string; workingArea: string; stateDir: string };
  /** Makes a path from this plugin's config absolute (relative to the config file's folder). */
  resolvePath(path: string): string;
  /** Same as the exported {@link skip}, for plain-JavaScript plugins that import nothing. */
  skip(reason: string): Skip;
}

export interface PluginDefinition<
  Kind extends PluginKind = PluginKind,
  Config = any,
  Req extends Requirements = Requirements,
> {
  readonly apiVersion: number;
  readonly kind: Kind;
  /** The contract version the instance implements (`wsd.<kind>.v1`); checked against {@link supportedContracts}. */
  readonly implements: string;
  /** Short kebab-case id, unique within its kind (`local`, `s3`, `git`). Config names the plugin by it. */
  readonly id: string;
  /** One line for `wsd plugins`. */
  readonly description?: string;
  /** Validates this plugin's config section; omitted means the plugin takes no config (an empty object). */
  readonly configSchema?: ConfigSchema<Config>;
  /** Services this plugin needs, by name; the kernel starts their providers first. */
  readonly requires?: Req;
  /** Builds the instance, or returns `skip(reason)` when it cannot run on this host. Throwing marks it failed. */
  create(
    context: PluginContext<Config, Req>,
  ): PluginInstances[Kind] | Skip | Promise<PluginInstances[Kind] | Skip>;
}

/** A plugin as the kernel holds it: definition plus where it came from. */
export type AnyPlugin = PluginDefinition<PluginKind, any, Requirements>;

export interface Skip {
  readonly wsdSkip: true;
  readonly reason: string;
}

/** Marks a plugin as unable to run on this host (recorded as `skipped`, not as a failure). */
export function skip(reason: string): Skip {
  return { wsdSkip: true, reason };
}

export function isSkip(value: unknown): value is Skip {
  return typeof value === 'object' && value !== null && (value as Skip).wsdSkip === true;
}

/**
 * Declares a plugin. The only function a plugin's `plugin.ts` needs from the kernel; it stamps the API version
 * so the kernel can refuse plugins built against another one.
 */
export function definePlugin<Kind extends PluginKind, Config = Record<string, never>, Req extends Requirements = {}>(
  definition: Omit<PluginDefinition<Kind, Config, Req>, 'apiVersion' | 'implements'> & { implements?: string },
): PluginDefinition<Kind, Config, Req> {
  // Without `implements`, the newest contract of its kind: what the plugin was written against when it was built.
  return Object.freeze({ ...definition, implements: definition.implements ?? supportedContracts[definition.kind][0]!, apiVersion: pluginApiVersion });
}

/** `kind/id`, the name a plugin goes by in messages and metrics. */
export function pluginName(plugin: { kind: string; id: string }): string {
  return `${plugin.kind}/${plugin.id}`;
}
