import { chown } from 'node:fs/promises';
import path from 'node:path';
import type { Registry } from 'prom-client';
import { BackupScheduler } from '../content/backup-scheduler.js';
import type { BackupManifest, BackupStore } from '../content/backup-store.js';
import { treeFingerprint } from '../content/tree-fingerprint.js';
import { WsdError, failureLogLevel, isWsdError, toWsdError } from '../errors.js';
import type { ContentSource, InitializeResult, InitializerLookup, ProgressReporter } from '../initializer/content-initializer.js';
import type { DiskGuard } from '../health/disk-guard.js';
import type { Logger } from '../observability/logger.js';
import type { RecentFailures } from '../observability/recent-failures.js';
import { redactValue, scrubSecrets } from '../observability/redact.js';
import type { QuotaStrategy } from '../quota/quota-strategy.js';
import type { StorageBackend } from '../storage/storage-backend.js';
import { KeyedLock } from './keyed-lock.js';
import { ProgressBoard, type OperationProgress } from './operation-progress.js';
import { excludeReadyMarkerFromGit, writeReadyMarker } from './ready-marker.js';
import { WorkspaceMetrics } from './workspace-metrics.js';
import { WorkspaceQuotas } from './workspace-quotas.js';
import { SessionStore } from './session-store.js';
import {
  assertValidKeySegment,
  assertValidWorkspaceId,
  type BackupRef,
  type SnapshotOperation,
  type WorkspaceRecord,
} from './workspace-record.js';

export interface InitRequest {
  id: string;
  owner: string;
  metaId: string;
  initializer: { kind: string; spec: unknown };
  remoteStorageDisabled: boolean;
  storageQuotaBytes: number;
}

/** What DisposeWorkspace reports about the first checkout. Filled by the git status reader when one is set. */
export interface GitStatusReport {
  branch: string;
  latestCommit: string;
  uncommittedFiles: string[];
  untrackedFiles: string[];
  unpushedCommits: string[];
  totalUncommittedFiles: number;
  totalUntrackedFiles: number;
  totalUnpushedCommits: number;
}

export type GitStatusReader = (folder: string, record: WorkspaceRecord) => Promise<GitStatusReport | undefined>;

export interface WorkspaceSettings {
  /** Ready marker path relative to the folder; empty disables it. */
  readyMarker: string;
  /** Restore an existing backup instead of running the requested initializer. */
  backupWins: boolean;
  /**
   * Owner of workspace folders and content. Set only when wsd runs as root (the daemon resolves this once), so
   * nothing here checks the uid again.
   */
  owner?: { uid: number; gid: number };
  /** Periodic backups: every `periodMs` (0 = off) with `jitter`, `retries` from `retryDelayMs`. */
  periodic: { periodMs: number; jitter: number; retries: number; retryDelayMs: number };
}

export const defaultWorkspaceSettings: WorkspaceSettings = {
  readyMarker: '.gitpod/ready',
  backupWins: true,
  periodic: { periodMs: 0, jitter: 0.2, retries: 4, retryDelayMs: 5000 },
};

export interface WorkspaceServiceDeps {
  workingArea: string;
  /** Folder of the state files, apart from the working area (the config's `paths.stateDir`). */
  stateDir: string;
  storage: StorageBackend;
  quota: QuotaStrategy;
  initializers: InitializerLookup;
  backups: BackupStore;
  settings?: WorkspaceSettings;
  log: Logger;
  metrics?: Registry;
  /** Reads the git status of a workspace before it is removed; none means an empty status. */
  gitStatus?: GitStatusReader;
  /** Where failed operations are listed for operators (the status page). */
  failures?: RecentFailures;
  /** Refuses new workspaces while the working area is short of free space (`workspaces.minFree`). */
  diskGuard?: Pick<DiskGuard, 'assertRoom'>;
}

/** What InitWorkspace achieved: where the content came from and what did not go as asked. */
export interface InitOutcome {
  source: ContentSource;
  /** Sentences for the caller: a missing branch, a backup restored instead of the requested initializer, … */
  warnings: string[];
  /** Set when "a backup always wins" restored this backup instead of running the requested initializer. */
  restoredFrom?: string;
}

interface Entry {
  record: WorkspaceRecord;
  init?: Promise<InitOutcome>;
  dispose?: Promise<GitStatusReport | undefined>;
}

/**
 * The workspace lifecycle on this node: init, wait, backup, snapshot, dispose, and recovery after a restart.
 *
 * - Every state change is persisted (SessionStore) before the work it announces, so a crash at any point can be
 *   resumed or cleaned up from the state file.
 * - One operation at a time per workspace (KeyedLock). Concurrent DisposeWorkspace calls share one result.
 * - Work is never tied to a caller: a client that goes away does not cancel an init or a final backup. Only daemon
 *   shutdown aborts an init, which the next start wipes and marks failed.
 * - Nothing is deleted before its final backup is stored: a failed final backup is `DATA_LOSS`, and the folder and
 *   the record stay (`ready`) so a later dispose can retry.
 */
export class WorkspaceService {
  readonly #deps: WorkspaceServiceDeps;
  readonly #settings: WorkspaceSettings;
  readonly #store: SessionStore;
  readonly #backups: BackupStore;
  readonly #scheduler: BackupScheduler;
  readonly #lock = new KeyedLock();
  readonly #entries = new Map<string, Entry>();
  /** Ids whose state file is unreadable → that file: nothing is done to them until an operator acts. */
  readonly #blocked = new Map<string, string>();
  readonly #quotas: WorkspaceQuotas;
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #shutdown = new AbortController();
  readonly #log: Logger;
  readonly #metrics: WorkspaceMetrics;
  readonly #progress = new ProgressBoard();

  constructor(deps: WorkspaceServiceDeps) {
    this.#deps = deps;
    this.#log = deps.log;
    this.#settings = deps.settings ?? defaultWorkspaceSettings;
    this.#store = new SessionStore(deps.stateDir, deps.log, { legacyDir: deps.workingArea });
    this.#backups = deps.backups;
    this.#quotas = new WorkspaceQuotas(deps.quota, deps.log);
    this.#scheduler = new BackupScheduler({
      ...this.#settings.periodic,
      log: deps.log,
      ...(deps.metrics ? { metrics: deps.metrics } : {}),
      backup: (id) => this.#periodicBackup(id),
    });
    this.#metrics = new WorkspaceMetrics(
      deps.metrics,
      () => [...this.#entries.values()].map((e) => e.record.state),
      () => this.#quotaTotals(),
    );
  }

  /**
   * Reloads every state file: quota handles go back to their strategy first, then ready workspaces are served
   * again, interrupted inits are released (folder removed) and marked failed (the workspace manager retries
   * InitWorkspace; wsd does not replay an initializer whose credentials may have expired), interrupted disposals
   * are finished in the background.
   */
  async recover(): Promise<void> {
    const { records, unreadable } = await this.#store.loadAll();
    for (const { id, file } of unreadable) this.#blocked.set(id, file);
    for (const record of records) this.#entries.set(record.id, { record });
    await this.#quotas.recover(records, [...this.#blocked.keys()]);
    for (const record of records) {
      const log = this.#log.child({ workspaceId: record.id });
      if (record.state === 'initializing') {
        log.warn('init was interrupted by a restart; releasing its folder and marking failed');
        const released = await this.#quotas.release(record, log).then(
          () => true,
          (error: unknown) => {
            log.error('cannot release the folder of the interrupted init; the record keeps its quota handle', { error: error as Error });
            return false;
          },
        );
        await this.#update(record, { state: 'failed', ...(released ? { quota: undefined } : {}), lastError: 'init was interrupted by a daemon restart' });
        this.#recordFailure(record.id, 'init', new WsdError('UNAVAILABLE', record.lastError!));
      } else if (record.state === 'disposing' || record.state === 'disposed') {
        log.info('finishing an interrupted dispose', { backup: record.dispose?.backup ?? false });
        this.#startDispose(this.#entries.get(record.id)!, record.dispose?.backup ?? false).catch((error: unknown) =>
          log.error('interrupted dispose failed', { error: error as Error }),
        );
      } else {
        log.info('workspace recovered', { state: record.state });
        // A detached handle may be a volume nobody mounted again (a loop image after a reboot): a periodic backup
        // of the empty mount point would become the latest backup. Explicit backups still run.
        if (record.state === 'ready' && !this.#quotas.isDetached(record.id)) this.#scheduler.add(record.id);
      }
    }
  }

  /**
   * Creates and fills a workspace; resolves when it is ready, with what came of it. Runs to completion even if the
   * caller goes away.
   */
  async init(request: InitRequest): Promise<InitOutcome> {
    assertValidWorkspaceId(request.id);
    assertValidKeySegment(request.owner, 'metadata.owner');
    assertValidKeySegment(request.metaId, 'metadata.meta_id');
    if (!Number.isSafeInteger(request.storageQuotaBytes) || request.storageQuotaBytes < 0) {
      throw new WsdError('INVALID_ARGUMENT', 'storage_quota_bytes must be a non-negative integer', { field: 'storage_quota_bytes' });
    }
    const plugin = this.#deps.initializers.get(request.initializer.kind); // an unknown kind fails before anything is created
    // Before the checks below, which must run without an await between them and the entry they guard.
    await this.#deps.diskGuard?.assertRoom();
    if (this.#shutdown.signal.aborted) throw new WsdError('UNAVAILABLE', 'wsd is shutting down');

    this.#assertNotBlocked(request.id);
    const existing = this.#entries.get(request.id);
    if (existing && (existing.record.state !== 'failed' || existing.dispose)) {
      throw new WsdError('ALREADY_EXISTS', `workspace ${request.id} exists already (${existing.record.state})`);
    }
    // A failed attempt whose folder could not be released keeps its handle; this attempt releases it first.
    const leftover = existing?.record.quota;
    if (leftover && this.#quotas.isDetached(request.id)) {
      throw new WsdError('FAILED_PRECONDITION', `workspace ${request.id}: the folder of a failed attempt cannot be released: ${this.#quotas.detachedReason(request.id)}`);
    }
    const now = new Date().toISOString();
    const record: WorkspaceRecord = {
      version: 1,
      id: request.id,
      owner: request.owner,
      metaId: request.metaId,
      state: 'initializing',
      folder: path.join(this.#deps.workingArea, request.id),
      // Persisted without secrets: an interrupted init is not replayed (ADR 0002), so nothing needs them later.
      // The plugin that owns the spec takes its credentials out; URL credentials and presigned queries are scrubbed
      // on top, whatever the plugin knows.
      initializer: { kind: request.initializer.kind, spec: redactValue(plugin.redact?.(request.initializer.spec, this.#deps.initializers) ?? request.initializer.spec) },
      remoteStorageDisabled: request.remoteStorageDisabled,
      storageQuotaBytes: request.storageQuotaBytes,
      ...(leftover ? { quota: leftover } : {}),
      snapshots: [],
      createdAt: now,
      updatedAt: now,
    };
    const entry: Entry = { record };
    this.#entries.set(request.id, entry);
    const progress = this.#progress.start(request.id, 'init');
    entry.init = this.#track(this.#lock.run(request.id, () => progress.run(() => this.#recorded(record.id, 'init', () => this.#init(record, request.initializer.spec, progress.report)))));
    return entry.init;
  }

  /** Resolves once the workspace is ready. NOT_FOUND for unknown ids; FAILED_PRECONDITION if it failed or is going away. */
  async waitForInit(id: string): Promise<void> {
    assertValidWorkspaceId(id);
    const entry = this.#entries.get(id);
    if (!entry) throw this.#missing(id);
    await entry.init?.catch(() => {});
    const { state, lastError } = entry.record;
    if (state === 'ready') return;
    if (state === 'failed') throw new WsdError('FAILED_PRECONDITION', `workspace ${id} failed to initialize: ${lastError ?? 'unknown error'}`);
    throw new WsdError('FAILED_PRECONDITION', `workspace ${id} is ${state}`);
  }

  /** True while the workspace is initializing or ready (not failed, not being disposed). */
  exists(id: string): boolean {
    assertValidWorkspaceId(id);
    const state = this.#entries.get(id)?.record.state;
    return state === 'initializing' || state === 'ready';
  }

  /** Stores a backup now and returns it. FAILED_PRECONDITION unless ready and remote storage is enabled. */
  async backup(id: string): Promise<BackupRef> {
    const entry = this.#readyEntry(id, 'back up');
    const progress = this.#progress.start(id, 'backup');
    return this.#track(this.#lock.run(id, () => progress.run(() => this.#recorded(id, 'backup', async () => {
      this.#assertReady(entry, 'back up');
      return this.#archive(entry, 'backup', { progress: progress.report });
    }))));
  }

  /**
   * Takes a snapshot and returns its name (what the snapshot initializer accepts). With `returnImmediately` the
   * name comes back at once and the outcome shows in `describe`.
   */
  async takeSnapshot(id: string, options: { returnImmediately: boolean }): Promise<string> {
    const entry = this.#readyEntry(id, 'snapshot');
    const name = this.#backups.newArchiveKey(entry.record, 'snapshot');
    const operation: SnapshotOperation = { name, status: 'running', startedAt: new Date().toISOString() };
    entry.record.snapshots = [...entry.record.snapshots, operation].slice(-20);
    const progress = this.#progress.start(id, 'snapshot');
    const run = this.#track(this.#lock.run(id, () => progress.run(() => this.#recorded(id, 'snapshot', async () => {
      try {
        this.#assertReady(entry, 'snapshot');
      } catch (error) {
        // Queued behind a dispose: the operation must not stay "running" in describe forever.
        Object.assign(operation, { status: 'failed', error: (error as Error).message });
        throw error;
      }
      await this.#archive(entry, 'snapshot', { key: name, progress: progress.report });
    }))));
    if (options.returnImmediately) {
      run.catch((error: unknown) => this.#log[failureLogLevel(error)]('snapshot failed', { workspaceId: id, name, error: error as Error }));
      return name;
    }
    await run;
    return name;
  }

  /**
   * Final backup (when asked and remote storage is enabled), git status, then the quota strategy's release, which
   * removes the folder. A second concurrent call waits for the first and gets its result. FAILED_PRECONDITION,
   * with nothing changed, when the workspace's quota handle is detached (made by a strategy not configured now).
   */
  async dispose(id: string, options: { backup: boolean }): Promise<GitStatusReport | undefined> {
    assertValidWorkspaceId(id);
    const entry = this.#entries.get(id);
    if (!entry) throw this.#missing(id);
    return entry.dispose ?? this.#startDispose(entry, options.backup);
  }

  /** Runs a dispose under the workspace's lock; callers arriving meanwhile share it. */
  #startDispose(entry: Entry, backup: boolean): Promise<GitStatusReport | undefined> {
    const progress = this.#progress.start(entry.record.id, 'dispose');
    const dispose = this.#track(this.#lock.run(entry.record.id, () => progress.run(() => this.#recorded(entry.record.id, 'dispose', () => this.#dispose(entry, backup, progress.report)))));
    entry.dispose = dispose;
    dispose.catch(() => {
      // A failed dispose (final backup failed) leaves the workspace ready; a later call starts afresh.
      if (entry.dispose === dispose) delete entry.dispose;
    });
    return dispose;
  }

  /**
   * The running or last operation of each kind on a workspace (init, backup, periodic backup, snapshot, dispose),
   * most recent first. Finished operations are remembered for a while, also after a dispose. NOT_FOUND when the
   * workspace is unknown and nothing is remembered of it.
   */
  operationProgress(id: string): OperationProgress[] {
    assertValidWorkspaceId(id);
    const known = this.#progress.get(id);
    if (known) return known;
    if (this.#entries.has(id)) return [];
    throw this.#missing(id);
  }

  list(): WorkspaceRecord[] {
    return [...this.#entries.values()].map((e) => structuredClone(e.record)).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  describe(id: string): WorkspaceRecord {
    assertValidWorkspaceId(id);
    const entry = this.#entries.get(id);
    if (!entry) throw this.#missing(id);
    return structuredClone(entry.record);
  }

  /** The current git status of a ready workspace's first checkout (what DisposeWorkspace would report now). */
  async gitStatus(record: WorkspaceRecord): Promise<GitStatusReport | undefined> {
    if (record.state !== 'ready' || !this.#deps.gitStatus) return undefined;
    return this.#deps.gitStatus(record.folder, record).catch(() => undefined);
  }

  /** What the quota strategy measures, for describe; nothing when it does not report usage or the handle is detached. */
  async quotaUsage(record: WorkspaceRecord): Promise<{ usedBytes?: number; limitBytes?: number }> {
    if (!record.quota || record.state !== 'ready' || !this.#deps.quota.capabilities.reportsUsage || this.#quotas.isDetached(record.id)) return {};
    return this.#deps.quota.usage({ handle: record.quota }).catch(() => ({}));
  }

  /** Limits in force and measured use, summed over the workspaces holding a folder (for the metrics). */
  async #quotaTotals(): Promise<{ limitBytes: number; usedBytes?: number }> {
    const records = [...this.#entries.values()].map((e) => e.record).filter((r) => r.state === 'initializing' || r.state === 'ready' || r.state === 'disposing');
    const usage = await Promise.all(records.map((record) => this.quotaUsage(record)));
    const limitBytes = records.reduce((sum, record, i) => sum + (usage[i]!.limitBytes ?? record.quota?.limitBytes ?? record.storageQuotaBytes), 0);
    if (!this.#deps.quota.capabilities.reportsUsage) return { limitBytes };
    return { limitBytes, usedBytes: usage.reduce((sum, u) => sum + (u.usedBytes ?? 0), 0) };
  }

  /** Backups and snapshots of a workspace, from storage. */
  listArchives(target: { owner: string; metaId: string }): Promise<{ backups: BackupManifest[]; snapshots: BackupManifest[]; latest?: BackupManifest }> {
    assertValidKeySegment(target.owner, 'owner');
    assertValidKeySegment(target.metaId, 'meta_id');
    return Promise.all([this.#backups.list(target), this.#backups.latestBackup(target)]).then(([all, latest]) => ({ ...all, ...(latest ? { latest } : {}) }));
  }

  /**
   * Stops taking work, aborts running inits (a restart wipes them) and waits up to `timeoutMs` for backups,
   * snapshots and disposals in flight, which are safe to abandon: nothing is made current before it is complete.
   */
  async stop(timeoutMs = 30_000): Promise<void> {
    this.#shutdown.abort();
    this.#scheduler.stop();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([Promise.allSettled([...this.#inFlight]), timeout]);
    clearTimeout(timer);
    if (this.#inFlight.size > 0) this.#log.warn('stopped with operations still running', { count: this.#inFlight.size });
  }

  async #init(record: WorkspaceRecord, spec: unknown, progress: ProgressReporter): Promise<InitOutcome> {
    const log = this.#log.child({ workspaceId: record.id, op: 'init', initializer: record.initializer.kind });
    const started = Date.now();
    const { quota: strategy } = this.#deps;
    // Without soft limits the limit given to provision is the final one and there is no soft phase (ADR 0004).
    const softPhase = strategy.capabilities.softLimits && record.storageQuotaBytes > 0;
    try {
      await this.#store.save(record);
      if (record.quota) {
        await this.#quotas.release(record, log);
        await this.#update(record, { quota: undefined });
      }
      // The strategy creates the folder (refusing one that exists); from here on the folder is wsd's to remove.
      progress({ phase: 'provisioning' });
      const quota = await strategy.provision({ workspaceId: record.id, dir: record.folder, limitBytes: record.storageQuotaBytes, signal: this.#shutdown.signal });
      await this.#update(record, { quota });
      if (this.#settings.owner) await chown(record.folder, this.#settings.owner.uid, this.#settings.owner.gid);
      // Soft while restoring: a compressed backup can expand past a hard limit halfway through.
      if (softPhase) record.quota = await strategy.setLimit({ handle: quota, limitBytes: record.storageQuotaBytes, mode: 'soft' });
      const result = await this.#fill(record, spec, log, progress);
      progress({ phase: 'finishing' });
      // The marker is still written under the soft limit: a workspace restored from a backup taken at its limit is
      // full, and a hard limit would refuse the marker's file (XFS refuses even to create it: found in the guest).
      const owner = this.#settings.owner ? { owner: this.#settings.owner } : {};
      await writeReadyMarker({ folder: record.folder, marker: this.#settings.readyMarker, result, ...owner, log });
      await excludeReadyMarkerFromGit({ folder: record.folder, marker: this.#settings.readyMarker, checkouts: this.#checkoutLocations(record), ...owner, log });
      if (softPhase) record.quota = await strategy.setLimit({ handle: record.quota!, limitBytes: record.storageQuotaBytes, mode: 'hard' });
      const warnings = result.warnings ?? [];
      await this.#update(record, { state: 'ready', contentSource: result.source, initStats: result.stats, ...(warnings.length ? { initWarnings: warnings } : {}) });
      this.#scheduler.add(record.id);
      this.#metrics.initSeconds?.observe({ kind: record.initializer.kind, outcome: 'ok' }, (Date.now() - started) / 1000);
      log.info('workspace ready', { source: result.source, durationMs: Date.now() - started, ...(warnings.length ? { warnings } : {}) });
      return { source: result.source, warnings, ...(record.restoredFrom ? { restoredFrom: record.restoredFrom } : {}) };
    } catch (error) {
      const failure = initFailure(error, record.initializer.kind);
      this.#metrics.initSeconds?.observe({ kind: record.initializer.kind, outcome: failure.code }, (Date.now() - started) / 1000);
      // Judged by what the initializer threw: a missing backup is the caller's mistake, a failing tar is not.
      log[failureLogLevel(toWsdError(error))]('init failed', { error: failure });
      // Only what this call created: without a quota handle the folder (if any) was there before and is not ours.
      // A release that fails keeps the handle, so a dispose or the next init of this id releases it.
      const released = await this.#quotas.release(record, log).then(
        () => true,
        (e: unknown) => {
          log.error('cleanup after failed init failed; the record keeps its quota handle', { error: e as Error });
          return false;
        },
      );
      await this.#update(record, { state: 'failed', ...(released ? { quota: undefined } : {}), lastError: failure.message }).catch(() => {});
      throw failure;
    }
  }

  /**
   * Runs the requested initializer — or, when "a backup always wins" and the workspace has a backup, restores that
   * instead: a workspace that was ever backed up never silently starts from a fresh clone.
   */
  async #fill(record: WorkspaceRecord, spec: unknown, log: Logger, progress: ProgressReporter): Promise<InitializeResult> {
    const quota = record.storageQuotaBytes ? { quotaBytes: record.storageQuotaBytes } : {};
    if (this.#settings.backupWins && !record.remoteStorageDisabled && record.initializer.kind !== 'backup') {
      progress({ phase: 'looking for a backup' });
      const latest = await this.#backups.latestBackup(record);
      if (latest) {
        log.info('a backup exists; restoring it instead of the requested initializer', { backup: latest.object, requested: record.initializer.kind });
        const started = Date.now();
        await this.#backups.restore(latest, record.folder, this.#shutdown.signal, { ...quota, progress, cacheAs: record });
        record.restoredFrom = latest.object;
        // Said to the caller: asking for `empty` (or a clone) and getting yesterday's work back must not be a surprise.
        const warning = `workspace ${record.metaId} (owner ${record.owner}) has a backup: restored ${latest.object} (taken ${latest.createdAt}) instead of running the ${record.initializer.kind} initializer (workspaces.backupWins)`;
        return { source: 'from-backup', stats: [{ kind: 'backup', durationMs: Date.now() - started, bytes: latest.bytesUncompressed }], warnings: [warning] };
      }
    }
    progress({ phase: record.initializer.kind === 'git' ? 'cloning' : `initializing (${record.initializer.kind})` });
    return this.#deps.initializers.get(record.initializer.kind).initialize({
      spec: spec ?? {},
      dir: record.folder,
      workspace: { id: record.id, owner: record.owner, metaId: record.metaId },
      storage: this.#deps.storage,
      // The workspace's quota is bound here, once: no initializer can restore past it by forgetting to pass it.
      archives: {
        latestBackup: (target) => this.#backups.latestBackup(target),
        snapshot: (name) => this.#backups.snapshot(name),
        // A restore of the whole folder is remembered as this workspace's last tree: its first backup then costs stats.
        restore: (manifest, dir, signal, limits) => this.#backups.restore(manifest, dir, signal, { ...limits, ...quota, progress, ...(dir === record.folder ? { cacheAs: record } : {}) }),
      },
      progress,
      initializers: this.#deps.initializers,
      signal: this.#shutdown.signal,
      log,
      ...(this.#settings.owner ? { user: this.#settings.owner } : {}),
      ...quota,
    });
  }

  /** One periodic run: back up unless the tree is unchanged since the last backup. */
  #periodicBackup(id: string): Promise<'stored' | 'skipped' | 'gone'> {
    const entry = this.#entries.get(id);
    if (!entry || entry.record.state !== 'ready' || entry.record.remoteStorageDisabled) return Promise.resolve('gone');
    return this.#track(this.#lock.run(id, async () => {
      if (entry.record.state !== 'ready' || this.#shutdown.signal.aborted) return 'gone';
      return this.#recorded(id, 'periodic backup', async () => {
        // Chunked backups find unchanged trees themselves (from a cached tree, at a stat per file) and store nothing.
        const chunked = this.#backups.detectsUnchanged;
        const fingerprint = chunked ? undefined : await treeFingerprint(entry.record.folder, { exclude: this.#excluded() });
        if (fingerprint !== undefined && fingerprint === entry.record.lastBackup?.fingerprint) return 'skipped';
        const before = entry.record.lastBackup?.key;
        const progress = this.#progress.start(id, 'periodic-backup');
        const ref = await progress.run(() => this.#archive(entry, 'backup', { ...(fingerprint ? { fingerprint } : {}), progress: progress.report }));
        return chunked && ref.key === before ? 'skipped' : 'stored';
      });
    }));
  }

  /** Where the workspace's initializer put checkouts (the plugin that owns the spec knows); the folder when it says none. */
  #checkoutLocations(record: WorkspaceRecord): string[] {
    try {
      const locations = this.#deps.initializers.get(record.initializer.kind).checkoutLocations?.(record.initializer.spec, this.#deps.initializers);
      return locations?.length ? locations : [''];
    } catch {
      return [''];
    }
  }

  /** Left out of every archive: the ready marker must not come back with a restore before content is ready. */
  #excluded(): string[] {
    return this.#settings.readyMarker ? [this.#settings.readyMarker] : [];
  }

  async #dispose(entry: Entry, backup: boolean, progress: ProgressReporter): Promise<GitStatusReport | undefined> {
    const { record } = entry;
    this.#scheduler.remove(record.id);
    const log = this.#log.child({ workspaceId: record.id, op: 'dispose' });
    await entry.init?.catch(() => {});
    if (record.state === 'failed') {
      // Nothing on disk but the record — unless releasing the folder failed after the init failed: release it now.
      if (record.quota) {
        await this.#quotas.release(record, log);
        await this.#update(record, { quota: undefined });
      }
      await this.#store.delete(record.id);
      if (this.#entries.get(record.id) === entry) this.#entries.delete(record.id);
      return undefined;
    }
    this.#quotas.assertAttached(record, 'dispose'); // before anything changes: the workspace stays as it is
    const wantsBackup = backup && !record.remoteStorageDisabled;
    if (backup && record.remoteStorageDisabled) log.warn('final backup skipped: remote storage is disabled for this workspace');
    let finalBackupDone = record.dispose?.finalBackupDone ?? false;
    const resumedKey = record.dispose?.archiveKey;
    const archiveKey = wantsBackup ? (resumedKey ?? this.#backups.newArchiveKey(record, 'backup')) : undefined;
    await this.#update(record, { state: 'disposing', dispose: { backup: wantsBackup, finalBackupDone, ...(archiveKey ? { archiveKey } : {}) } });
    // A resumed dispose whose backup was stored before the restart (manifest written, completion not yet recorded)
    // must not store it again under the same key — a manifest latest.json may hold would no longer match the bytes —
    // but its commit is finished: latest.json moved to it (unless a newer one is current) and retention run.
    if (wantsBackup && !finalBackupDone && resumedKey && (await this.#backups.resumeCommit(record, resumedKey))) {
      log.info('the final backup was stored before the restart', { key: resumedKey });
      finalBackupDone = true;
      await this.#update(record, { dispose: { backup: true, finalBackupDone: true, archiveKey: resumedKey } });
    }

    if (wantsBackup && !finalBackupDone) {
      try {
        await this.#archive(entry, 'backup', { key: archiveKey!, progress: (update) => progress({ ...update, ...(update.phase ? { phase: `final backup: ${update.phase}` } : {}) }) });
      } catch (error) {
        const cause = toWsdError(error);
        await this.#update(record, { state: 'ready', dispose: undefined, lastError: `final backup failed: ${cause.message}` });
        this.#scheduler.add(record.id);
        log.error('final backup failed; workspace kept', { error: cause });
        throw new WsdError('DATA_LOSS', `final backup failed: ${cause.message}`, { cause });
      }
      // Recorded before anything is deleted, so a restart from here on never takes a second, partial backup.
      await this.#update(record, { dispose: { backup: true, finalBackupDone: true, ...(archiveKey ? { archiveKey } : {}) } });
    }

    progress({ phase: 'reading git status' });
    const gitStatus = await this.#deps.gitStatus?.(record.folder, record).catch((error: unknown) => {
      log.warn('cannot read git status', { error: error as Error });
      return undefined;
    });
    // The strategy removes the folder. If it fails (a volume still busy), the workspace stays `disposing` with its
    // handle and its final backup recorded, and a later dispose — or the next start — retries.
    progress({ phase: 'removing' });
    await this.#quotas.release(record, log);
    await this.#update(record, { state: 'disposed', quota: undefined });
    await this.#store.delete(record.id);
    if (this.#entries.get(record.id) === entry) this.#entries.delete(record.id);
    log.info('workspace disposed', { backup: wantsBackup });
    return gitStatus;
  }

  async #archive(entry: Entry, kind: 'backup' | 'snapshot', options: { key?: string; fingerprint?: string; progress?: ProgressReporter } = {}): Promise<BackupRef> {
    const { record } = entry;
    const log = this.#log.child({ workspaceId: record.id, op: kind });
    const started = Date.now();
    const operation = kind === 'snapshot' ? record.snapshots.find((s) => s.name === options.key) : undefined;
    try {
      const exclude = this.#excluded();
      // Taken before archiving: a change made while the archive is written shows up as a change next time.
      if (kind === 'backup' && !options.fingerprint) options.progress?.({ phase: 'scanning' });
      const chunked = this.#backups.detectsUnchanged;
      const fingerprint = kind === 'backup' && !chunked ? (options.fingerprint ?? (await treeFingerprint(record.folder, { exclude }))) : undefined;
      const manifest = await this.#backups.write({ owner: record.owner, metaId: record.metaId, instanceId: record.id }, record.folder, kind, {
        ...(options.key ? { key: options.key } : {}),
        exclude,
        ...(options.progress ? { progress: options.progress } : {}),
      });
      const ref: BackupRef = { key: manifest.object, sizeBytes: manifest.size, createdAt: manifest.createdAt, ...(fingerprint ? { fingerprint } : {}) };
      if (operation) Object.assign(operation, { status: 'done', sizeBytes: manifest.size });
      await this.#update(record, kind === 'backup' ? { lastBackup: ref } : {});
      this.#metrics.archiveSeconds?.observe({ kind, outcome: 'ok' }, (Date.now() - started) / 1000);
      log.info(`${kind} stored`, { key: manifest.object, sizeBytes: manifest.size, files: manifest.files, durationMs: Date.now() - started });
      return ref;
    } catch (error) {
      const failure = toWsdError(error, 'UNAVAILABLE');
      this.#metrics.archiveSeconds?.observe({ kind, outcome: failure.code }, (Date.now() - started) / 1000);
      if (operation) Object.assign(operation, { status: 'failed', error: scrubSecrets(failure.message) });
      await this.#update(record, { lastError: `${kind} failed: ${failure.message}` }).catch(() => {});
      throw failure;
    }
  }

  #readyEntry(id: string, what: string): Entry {
    assertValidWorkspaceId(id);
    const entry = this.#entries.get(id);
    if (!entry) throw this.#missing(id);
    if (entry.record.remoteStorageDisabled) {
      throw new WsdError('FAILED_PRECONDITION', `cannot ${what} workspace ${id}: remote storage is disabled for it`);
    }
    this.#assertReady(entry, what);
    return entry;
  }

  /** NOT_FOUND, or FAILED_PRECONDITION for an id whose state file is unreadable (it may well exist). */
  #missing(id: string): WsdError {
    this.#assertNotBlocked(id);
    return new WsdError('NOT_FOUND', `workspace ${id} does not exist`);
  }

  #assertNotBlocked(id: string): void {
    const file = this.#blocked.get(id);
    if (file) {
      throw new WsdError('FAILED_PRECONDITION', `workspace ${id} is blocked: its state file ${file} is unreadable; an operator must repair or remove it (its folder is left as it is)`);
    }
  }

  #assertReady(entry: Entry, what: string): void {
    if (entry.record.state !== 'ready') {
      throw new WsdError('FAILED_PRECONDITION', `cannot ${what} workspace ${entry.record.id}: it is ${entry.record.state}`);
    }
  }

  async #update(record: WorkspaceRecord, changes: Partial<WorkspaceRecord>): Promise<void> {
    Object.assign(record, changes, { updatedAt: new Date().toISOString() });
    // Error texts may quote a URL from the request; the state file (and describe) never holds its secrets.
    if (record.lastError) record.lastError = scrubSecrets(record.lastError);
    await this.#store.save(record);
  }

  /**
   * Runs one operation a caller or the scheduler started; if it fails, it goes into the recent failures operators
   * see. One place per operation, at its outermost boundary, so a failed final backup is one failed `dispose`, not
   * also a failed `backup`.
   */
  async #recorded<T>(id: string, operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      this.#recordFailure(id, operation, error);
      throw error;
    }
  }

  #recordFailure(id: string, operation: string, error: unknown): void {
    const failure = toWsdError(error);
    this.#deps.failures?.record({ workspaceId: id, operation, code: failure.code, message: failure.message });
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#inFlight.add(promise);
    const forget = () => this.#inFlight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }
}

/** Initializer failures are FAILED_PRECONDITION, except the codes a caller acts on differently. */
function initFailure(error: unknown, kind: string): WsdError {
  const wsd = toWsdError(error);
  if (['NOT_FOUND', 'INVALID_ARGUMENT', 'ALREADY_EXISTS', 'RESOURCE_EXHAUSTED', 'UNAVAILABLE', 'DATA_LOSS'].includes(wsd.code)) return wsd;
  if (isWsdError(error, 'CANCELLED')) return new WsdError('UNAVAILABLE', `init (${kind}) interrupted: wsd is shutting down`, { cause: error });
  return new WsdError('FAILED_PRECONDITION', `initializer ${kind} failed: ${wsd.message}`, { cause: wsd, ...(wsd.field ? { field: wsd.field } : {}) });
}
