import 'reflect-metadata';
import path from 'node:path';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { Gauge, Registry } from 'prom-client';
import type { WsdConfig } from '../config/load-config.js';
import { WsdError } from '../errors.js';
import { silentLogger, type Logger } from '../observability/logger.js';
import { WorkingAreaDiskGuard } from '../health/disk-guard.js';
import { coreTokens, diskGuardToken, loggerToken, metricsRegistryToken, pathsToken } from './core-tokens.js';
import { isSkip, pluginName, singleSlotKinds, skip, type PluginKind, type PluginLifecycle } from './plugin.js';
import { kindTokens, type PlannedPlugin } from './registry.js';
import type { Resolved, Token } from './token.js';
import { makeFolders } from '../fs/make-folders.js';

export type PluginState = 'ok' | 'skipped' | 'failed';

export interface PluginStatus {
  kind: PluginKind;
  id: string;
  /** `built-in` or the module it was loaded from. */
  source: string;
  status: PluginState;
  /** Why it was skipped or failed. */
  reason?: string;
}

export interface KernelOptions {
  config: WsdConfig;
  logger?: Logger;
  /** Where `wsd_plugin_status` and plugins' own metrics go; a fresh registry when omitted. */
  metrics?: Registry;
  /**
   * Values that replace what a token would resolve to (test fakes). Plugins of a kind whose token is overridden
   * are not created.
   */
  overrides?: ReadonlyArray<{ token: Token<any>; value: unknown }>;
}

/**
 * Owns one tsyringe container of its own (a child of tsyringe's root, on which nothing is ever registered: two kernels
 * in one process share nothing) and the plugins in it, each created in a child scope holding exactly what it
 * `requires`: creates them in dependency order, calls their `start`
 * hooks in that order and `stop` in reverse, and records ok / skipped / failed for each.
 *
 * Start-up fails (and everything already started is stopped again) when any plugin fails, or when a single-slot
 * kind (storage, quota) has no working plugin: a node agent that half-works is worse than one that refuses to start
 * with a clear reason.
 */
export class Kernel {
  readonly config: WsdConfig;
  readonly metrics: Registry;
  readonly #log: Logger;
  readonly #container: DependencyContainer;
  readonly #statuses = new Map<string, PluginStatus>();
  readonly #instances: Array<{ name: string; instance: PluginLifecycle }> = [];
  readonly #started: Array<{ name: string; instance: PluginLifecycle }> = [];
  readonly #overridden = new Set<string>();
  readonly #statusGauge: Gauge;
  #state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';

  constructor(options: KernelOptions) {
    this.config = options.config;
    this.#log = options.logger ?? silentLogger;
    this.metrics = options.metrics ?? new Registry();
    this.#container = rootContainer.createChildContainer();
    this.#register(loggerToken, this.#log);
    this.#register(metricsRegistryToken, this.metrics);
    this.#register(pathsToken, this.config.paths);
    this.#register(
      diskGuardToken,
      new WorkingAreaDiskGuard({ dir: this.config.paths.workingArea, minFreeBytes: this.config.root.workspaces.minFree, log: this.#log, metrics: this.metrics }),
    );
    for (const { token, value } of options.overrides ?? []) {
      this.#register(token, value);
      this.#overridden.add(token.id);
    }
    this.#statusGauge = new Gauge({
      name: 'wsd_plugin_status',
      help: 'Plugin state at start-up: 1 for the state each plugin is in',
      labelNames: ['kind', 'id', 'status'],
      registers: [this.metrics],
    });
  }

  /** Creates and starts every planned plugin. Throws `FAILED_PRECONDITION` listing what failed. */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new WsdError('FAILED_PRECONDITION', `kernel cannot start: it is ${this.#state}`);
    this.#state = 'starting';
    // The folders the kernel hands to plugins as `paths` exist before any plugin sees them.
    try {
      await makeFolders(this.config.paths.workingArea, 0o755);
    } catch (error) {
      this.#state = 'stopped';
      throw new WsdError('FAILED_PRECONDITION', `wsd cannot start: cannot create the working area ${this.config.paths.workingArea}: ${(error as Error).message}`);
    }
    for (const planned of this.config.plan) await this.#create(planned);

    const problems = this.#startupProblems();
    if (problems.length === 0) {
      for (const entry of this.#instances) {
        try {
          await entry.instance.start?.();
          this.#started.push(entry);
        } catch (error) {
          this.#setStatus(this.#statuses.get(entry.name)!, 'failed', `start failed: ${(error as Error).message}`);
          problems.push(`${entry.name}: start failed: ${(error as Error).message}`);
          break;
        }
      }
    }
    if (problems.length > 0) {
      await this.#stopStarted();
      this.#state = 'stopped';
      throw new WsdError('FAILED_PRECONDITION', `wsd cannot start:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    }
    this.#state = 'running';
  }

  /**
   * Calls `stop` on every started plugin in reverse start order (the instances are values the kernel registered,
   * which tsyringe's own `dispose` would not touch). Errors are logged, never thrown. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'stopping') return;
    this.#state = 'stopping';
    await this.#stopStarted();
    this.#state = 'stopped';
  }

  get running(): boolean {
    return this.#state === 'running';
  }

  /** The service behind a token: for multi-provider tokens every instance, in start order. */
  get<K extends Token<any>>(token: K): Resolved<K> {
    if (token.multiple) {
      return (this.#container.isRegistered(token.key) ? this.#container.resolveAll(token.key) : []) as Resolved<K>;
    }
    if (!this.#container.isRegistered(token.key)) {
      throw new WsdError('FAILED_PRECONDITION', `no service registered for ${token.id}`);
    }
    return this.#container.resolve(token.key) as Resolved<K>;
  }

  /** One entry per planned plugin, in start order. */
  statuses(): PluginStatus[] {
    return [...this.#statuses.values()].map((s) => ({ ...s }));
  }

  async #create(planned: PlannedPlugin): Promise<void> {
    const { plugin } = planned;
    const name = pluginName(plugin);
    const status: PluginStatus = { kind: plugin.kind, id: plugin.id, source: planned.source, status: 'failed' };
    this.#statuses.set(name, status);
    const log = this.#log.child({ plugin: name });

    if (this.#overridden.has(kindTokens[plugin.kind].id)) {
      return this.#setStatus(status, 'skipped', `${kindTokens[plugin.kind].id} is overridden`);
    }
    const unavailable = planned.dependsOn.filter((dep) => this.#statuses.get(dep)?.status !== 'ok');
    const required = Object.values(plugin.requires ?? {});
    // A plugin that needs one specific service cannot run without it; one that takes a list can do with fewer.
    const blocking = unavailable.filter((dep) => required.some((t) => !t.multiple && kindTokens[dep.split('/')[0] as PluginKind].id === t.id));
    if (blocking.length > 0) {
      const dep = this.#statuses.get(blocking[0]!)!;
      return this.#setStatus(status, 'skipped', `needs ${blocking[0]}, which ${dep.status === 'skipped' ? 'was skipped' : 'failed'}`);
    }

    try {
      // A scope of its own that holds exactly what the plugin requires: it can reach nothing else of the kernel.
      const scope = this.#container.createChildContainer();
      const services: Record<string, unknown> = {};
      for (const [as, token] of Object.entries(plugin.requires ?? {})) {
        scope.register(token.key, { useValue: this.#resolveById(token) });
        services[as] = scope.resolve(token.key);
      }
      const result = await plugin.create({
        config: this.config.pluginConfigs.get(name),
        services,
        log,
        paths: { ...this.config.paths },
        resolvePath: (p: string) => path.resolve(this.config.baseDir, p),
        skip,
      });
      if (isSkip(result)) return this.#setStatus(status, 'skipped', result.reason);
      if (typeof result !== 'object' || result === null) throw new Error(`create() returned ${String(result)}, not an instance`);
      this.#register(kindTokens[plugin.kind], result);
      this.#instances.push({ name, instance: result as PluginLifecycle });
      this.#setStatus(status, 'ok');
    } catch (error) {
      this.#setStatus(status, 'failed', (error as Error)?.message ?? String(error));
    }
  }

  #startupProblems(): string[] {
    const problems = [...this.#statuses.entries()]
      .filter(([, s]) => s.status === 'failed')
      .map(([name, s]) => `${name} failed: ${s.reason}`);
    for (const kind of singleSlotKinds) {
      if (this.#overridden.has(kindTokens[kind].id)) continue;
      const chosen = [...this.#statuses.entries()].find(([, s]) => s.kind === kind);
      if (chosen && chosen[1].status === 'skipped') {
        problems.push(`${chosen[0]} was skipped (${chosen[1].reason}); wsd needs a working ${kind} plugin`);
      }
    }
    return problems;
  }

  #resolveById(token: Token<unknown>): unknown {
    const canonical = [...coreTokens, ...Object.values(kindTokens)].find((t) => t.id === token.id) ?? token;
    return this.get(canonical);
  }

  #register(token: Token<unknown>, value: unknown): void {
    this.#container.register(token.key, { useValue: value });
  }

  #setStatus(status: PluginStatus, state: PluginState, reason?: string): void {
    status.status = state;
    if (reason === undefined) delete status.reason;
    else status.reason = reason;
    for (const s of ['ok', 'skipped', 'failed'] as const) {
      this.#statusGauge.set({ kind: status.kind, id: status.id, status: s }, s === state ? 1 : 0);
    }
    const fields = { kind: status.kind, id: status.id, source: status.source, status: state, ...(reason ? { reason } : {}) };
    if (state === 'failed') this.#log.error('plugin', fields);
    else this.#log.info('plugin', fields);
  }

  async #stopStarted(): Promise<void> {
    while (this.#started.length > 0) {
      const { name, instance } = this.#started.pop()!;
      try {
        await instance.stop?.();
      } catch (error) {
        this.#log.error('plugin stop failed', { plugin: name, error: error as Error });
      }
    }
  }
}
