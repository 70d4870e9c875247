import { mkdir, readdir, realpath, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  WsdError,
  assertOwnQuotaHandle,
  errnoCode,
  isWsdError,
  makeFolders,
  mountsAtOrBelow,
  quotaHandleVersion,
  readMountTable,
  toWsdError,
  type HealthResult,
  type Logger,
  type QuotaHandle,
  type QuotaRecoverResult,
  type QuotaStrategy,
  type QuotaUsage,
  reusedProbe,
} from '../../../core/plugin-api.js';
import { ProjectIdTable } from './project-ids.js';
import { XfsProjectQuota, type ProjectLimits } from './xfs-project-quota.js';

export interface XfsQuotaOptions {
  /** The folder holding the workspace folders; it must be on an XFS file system mounted with `prjquota`. */
  workingArea: string;
  /** The project ids this strategy may hand out, both included; reserved for wsd on this file system. */
  firstProjectId: number;
  lastProjectId: number;
  /**
   * While content is restored (`setLimit` soft) the soft limit is the limit and the hard limit is this much more, in
   * percent of the limit; 0 = no hard limit while restoring.
   */
  softHeadroomPercent: number;
  /** Deadline of each xfs_quota / xfs_io run. */
  commandTimeoutMs: number;
  /** How long a health check result is reused. */
  healthIntervalMs: number;
  log: Logger;
}

/** Version of what this strategy keeps in `handle.data`. */
const dataVersion = 1;

interface XfsHandleData {
  dataVersion: typeof dataVersion;
  projectId: number;
  /** The limit mode last set: recover re-applies it. */
  mode: 'soft' | 'hard';
}

/** How many `xfs_io lsproj` run at once while the id table is read from disk. */
const scanConcurrency = 8;

/**
 * Quota contract v1 with XFS project quotas: every workspace folder is a plain folder in the working area carrying its
 * own project id (with the inherit flag, so all its content is charged to it), limited with `xfs_quota -x -c 'limit
 * -p'`. A write past the hard limit fails with ENOSPC inside that workspace only.
 *
 * Project ids come from a configured range, lowest free first, allocated under a lock. Which are taken is read from
 * disk the first time the strategy needs to know (and again by `recover`): the id on every folder of the working
 * area — also an empty folder with no limit, which the quota report does not list — plus every id the quota report
 * shows usage or limits for, plus every handle's. `release` deletes the folder and clears the id's limits, and the id
 * is free again.
 *
 * Capabilities: enforces, reports usage (the quota report: no tree walk), resizable (a limit is a number), soft
 * limits (during a restore the limit is a soft one with a hard one `softHeadroomPercent` above it; XFS lets usage
 * pass a soft limit for its grace period, 7 days by default).
 */
export class XfsQuotaStrategy implements QuotaStrategy {
  readonly id = 'xfs';
  readonly capabilities = { enforces: true, reportsUsage: true, resizable: true, softLimits: true } as const;
  readonly #options: XfsQuotaOptions;
  readonly #log: Logger;
  readonly #ids: ProjectIdTable;
  /** Read from disk on first use; rebuilt by recover. */
  #idsLoaded = false;
  /** Serializes every use of the id table and the quota table behind it. */
  #queue: Promise<unknown> = Promise.resolve();
  #quota: Promise<XfsProjectQuota> | undefined;
  readonly #health: () => Promise<HealthResult>;

  constructor(options: XfsQuotaOptions) {
    if (!Number.isSafeInteger(options.firstProjectId) || !Number.isSafeInteger(options.lastProjectId) || options.firstProjectId < 1 || options.lastProjectId < options.firstProjectId) {
      throw new WsdError('INVALID_ARGUMENT', `project ids ${options.firstProjectId}..${options.lastProjectId} are not a range of positive integers`, { field: 'quota.xfs.firstProjectId' });
    }
    this.#options = { ...options, workingArea: path.resolve(options.workingArea) };
    this.#health = reusedProbe(options.healthIntervalMs, () => this.#probeHealth());
    this.#log = options.log;
    this.#ids = new ProjectIdTable(options.firstProjectId, options.lastProjectId);
  }

  /**
   * Why this strategy cannot work on this host, or undefined when it can: xfsprogs installed, the working area on XFS,
   * mounted with project quota accounted and enforced (`prjquota`). Plugin creation skips the plugin with it.
   */
  async unusableReason(): Promise<string | undefined> {
    try {
      await this.#filesystem();
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  }

  async provision({ workspaceId, dir, limitBytes, signal }: { workspaceId: string; dir: string; limitBytes: number; signal?: AbortSignal }): Promise<QuotaHandle> {
    assertLimit(limitBytes);
    throwIfCancelled(signal, workspaceId);
    dir = path.resolve(dir);
    const quota = await this.#filesystem();
    await makeFolders(path.dirname(dir));
    await this.#assertOnFilesystem(path.dirname(dir), quota);
    try {
      // Not recursive: an existing folder (or anything else at `dir`) is refused, never adopted.
      await mkdir(dir, 0o755);
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') throw new WsdError('ALREADY_EXISTS', `workspace folder ${dir} exists already`);
      throw new WsdError('INTERNAL', `cannot create ${dir}: ${(error as Error).message}`, { cause: error });
    }
    // Undone in reverse on any failure: no folder, no id, no limit is left behind.
    const undo: Array<{ what: string; run: () => Promise<unknown> }> = [{ what: `remove ${dir}`, run: () => rm(dir, { recursive: true, force: true }) }];
    try {
      const projectId = await this.#serialized(async () => {
        await this.#loadIds(quota);
        const id = this.#ids.allocate(dir);
        if (id === undefined) {
          throw new WsdError('RESOURCE_EXHAUSTED', `no free XFS project id for workspace ${workspaceId}: all of ${this.#ids.first}..${this.#ids.last} are taken (quota.xfs.firstProjectId/lastProjectId)`);
        }
        return id;
      });
      undo.push({ what: `free project id ${projectId}`, run: () => this.#freeId(quota, projectId, dir) });
      throwIfCancelled(signal, workspaceId);
      await quota.assignProject(dir, projectId, { ...(signal ? { signal } : {}) });
      await quota.setLimits(projectId, this.#limits(limitBytes, 'hard'), signal);
      throwIfCancelled(signal, workspaceId);
      const data: XfsHandleData = { dataVersion, projectId, mode: 'hard' };
      return { version: quotaHandleVersion, strategy: this.id, workspaceId, dir, limitBytes, data: { ...data } };
    } catch (error) {
      for (const step of undo.reverse()) {
        await step.run().catch((e: unknown) => this.#log.error('cannot undo a failed xfs provision', { workspaceId, step: step.what, error: e as Error }));
      }
      throw toWsdError(error, 'INTERNAL', `cannot provision an XFS project quota for workspace ${workspaceId}`);
    }
  }

  async setLimit({ handle, limitBytes, mode }: { handle: QuotaHandle; limitBytes: number; mode: 'soft' | 'hard' }): Promise<QuotaHandle> {
    const data = this.#data(handle);
    assertLimit(limitBytes);
    const quota = await this.#filesystem();
    await this.#assertFolder(handle);
    await this.#serialized(async () => {
      await this.#loadIds(quota);
      this.#assertOwner(data.projectId, handle);
      await quota.setLimits(data.projectId, this.#limits(limitBytes, mode));
    });
    return { ...handle, limitBytes, data: { ...data, mode } };
  }

  async usage({ handle }: { handle: QuotaHandle }): Promise<QuotaUsage> {
    const data = this.#data(handle);
    const quota = await this.#filesystem();
    await this.#assertFolder(handle);
    const line = (await quota.report(data.projectId, data.projectId)).get(data.projectId);
    // No line: nothing written yet and no limit (0).
    const limit = line ? line.softBytes || line.hardBytes : 0;
    return { usedBytes: line?.usedBytes ?? 0, ...(limit > 0 ? { limitBytes: limit } : {}) };
  }

  async release({ handle }: { handle: QuotaHandle }): Promise<void> {
    const data = this.#data(handle);
    const dir = path.resolve(handle.dir);
    const quota = await this.#filesystem();
    const mounted = await mountsAtOrBelow(dir);
    if (mounted.length > 0) {
      throw new WsdError('UNAVAILABLE', `cannot remove workspace folder ${dir}: a file system is mounted at ${mounted.join(', ')}; unmount it first`);
    }
    try {
      // `force`: a folder that is already gone is released (idempotent).
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch (error) {
      throw new WsdError(errnoCode(error) === 'EBUSY' ? 'UNAVAILABLE' : 'INTERNAL', `cannot remove workspace folder ${dir}: ${(error as Error).message}`, { cause: error });
    }
    await this.#serialized(async () => {
      await this.#loadIds(quota);
      await this.#freeId(quota, data.projectId, dir);
    });
  }

  async recover({ handles }: { handles: QuotaHandle[]; leaveAlone?: string[] }): Promise<QuotaRecoverResult> {
    for (const handle of handles) if (handle.strategy !== this.id) assertOwnQuotaHandle(handle, this.id); // the whole call fails
    const quota = await this.#filesystem().catch((error: unknown) => {
      throw new WsdError('FAILED_PRECONDITION', (error as Error).message);
    });
    const failed: QuotaRecoverResult['failed'] = [];
    const usable: Array<{ handle: QuotaHandle; data: XfsHandleData }> = [];
    for (const handle of handles) {
      try {
        usable.push({ handle, data: this.#data(handle) });
      } catch (error) {
        failed.push({ workspaceId: handle.workspaceId, error: toWsdError(error) });
      }
    }
    // Every id a handle names, also one this wsd cannot read: those are never acted on, nor handed to another.
    const named = new Set(handles.map((h) => h.data?.projectId).filter((id): id is number => typeof id === 'number'));
    await this.#serialized(async () => {
      await this.#loadIds(quota, { reload: true });
      for (const id of named) if (this.#ids.ownerOf(id) === undefined) this.#ids.claim(id, '');
      for (const { handle, data } of usable) {
        try {
          await this.#reattach(quota, handle, data);
        } catch (error) {
          failed.push({ workspaceId: handle.workspaceId, error: toWsdError(error, 'INTERNAL', `cannot re-attach the XFS project quota of workspace ${handle.workspaceId}`) });
        }
      }
      await this.#sweepLeftovers(quota, named);
    });
    return { failed };
  }

  /** Whether project quota is still accounted and enforced on the working area's file system. Reused for `healthIntervalMs`. */
  checkHealth(): Promise<HealthResult> {
    return this.#health();
  }

  async #probeHealth(): Promise<HealthResult> {
    try {
      const quota = await this.#filesystem();
      const state = await quota.state();
      if (!state?.enforcement) return { status: 'failing', reason: `xfs quota: project quota is no longer enforced on ${quota.mountPoint}` };
      return { status: 'ok' };
    } catch (error) {
      return { status: 'failing', reason: `xfs quota: ${(error as Error).message}` };
    }
  }

  /** The limits a mode means: hard = the limit; soft = the limit as soft limit, with the headroom as hard limit. */
  #limits(limitBytes: number, mode: 'soft' | 'hard'): ProjectLimits {
    if (mode === 'hard' || limitBytes === 0) return { softBytes: 0, hardBytes: limitBytes };
    const headroom = this.#options.softHeadroomPercent;
    return { softBytes: limitBytes, hardBytes: headroom === 0 ? 0 : limitBytes + Math.ceil((limitBytes * headroom) / 100) };
  }

  /**
   * The XFS file system of the working area, checked once (and again after a failure): XFS, with project quota
   * accounted and enforced. Fails with FAILED_PRECONDITION saying what is missing.
   */
  #filesystem(): Promise<XfsProjectQuota> {
    this.#quota ??= this.#findFilesystem();
    this.#quota.catch(() => (this.#quota = undefined));
    return this.#quota;
  }

  async #findFilesystem(): Promise<XfsProjectQuota> {
    const area = this.#options.workingArea;
    const existing = await nearestExisting(area);
    const mounts = await readMountTable();
    const inside = (point: string) => existing === point || existing.startsWith(point === '/' ? '/' : `${point}/`);
    const mount = mounts.filter((m) => inside(m.mountPoint)).reduce<(typeof mounts)[number] | undefined>((best, m) => (!best || m.mountPoint.length >= best.mountPoint.length ? m : best), undefined);
    if (!mount) throw new WsdError('FAILED_PRECONDITION', `cannot find the file system of the working area ${area} in /proc/self/mountinfo`);
    if (mount.fsType !== 'xfs') {
      throw new WsdError('FAILED_PRECONDITION', `the working area ${area} is on ${mount.fsType} (${mount.source} at ${mount.mountPoint}), not XFS: quota strategy "xfs" needs an XFS file system mounted with prjquota`);
    }
    const quota = new XfsProjectQuota(mount.mountPoint, this.#options.commandTimeoutMs);
    const state = await quota.state().catch((error: unknown) => {
      throw new WsdError('FAILED_PRECONDITION', isWsdError(error, 'FAILED_PRECONDITION') ? `${(error as Error).message} (install xfsprogs)` : (error as Error).message);
    });
    const remount = `mount it with -o prjquota (an fstab option; for the root file system the kernel parameter rootflags=prjquota)`;
    if (!state) throw new WsdError('FAILED_PRECONDITION', `the XFS file system of the working area ${area} (${mount.source} at ${mount.mountPoint}) has no project quota: ${remount}`);
    if (!state.accounting || !state.enforcement) {
      throw new WsdError('FAILED_PRECONDITION', `project quota on ${mount.mountPoint} (the working area ${area}) is ${state.accounting ? 'accounted but not enforced (pqnoenforce)' : 'off'}: ${remount}`);
    }
    return quota;
  }

  /** A workspace folder must be on the quota's file system: a project id elsewhere limits nothing. */
  async #assertOnFilesystem(folder: string, quota: XfsProjectQuota): Promise<void> {
    const [own, fs] = await Promise.all([stat(folder), stat(quota.mountPoint)]);
    if (own.dev !== fs.dev) {
      throw new WsdError('FAILED_PRECONDITION', `${folder} is not on the XFS file system at ${quota.mountPoint} that quota strategy "xfs" limits (is something else mounted there?)`);
    }
  }

  async #assertFolder(handle: QuotaHandle): Promise<void> {
    const exists = await stat(handle.dir).then((s) => s.isDirectory(), () => false);
    if (!exists) throw new WsdError('NOT_FOUND', `the folder ${handle.dir} of workspace ${handle.workspaceId} is gone`);
  }

  /** A handle's id must be its folder's (or nobody's): never change the limits of another workspace's id. */
  #assertOwner(projectId: number, handle: QuotaHandle): void {
    const owner = this.#ids.ownerOf(projectId);
    const dir = path.resolve(handle.dir);
    if (owner && owner !== dir) {
      throw new WsdError('FAILED_PRECONDITION', `project id ${projectId} of workspace ${handle.workspaceId} belongs to ${owner}, not to ${dir}`);
    }
    if (owner !== dir) this.#ids.claim(projectId, dir);
  }

  /** Clears the id's limits and frees it, unless it was handed to another folder since (a repeated release). */
  async #freeId(quota: XfsProjectQuota, projectId: number, dir: string): Promise<void> {
    const owner = this.#ids.ownerOf(projectId);
    if (owner && owner !== dir) {
      this.#log.info('project id already belongs to another workspace folder; its limits are left alone', { projectId, dir, owner });
      return;
    }
    await quota.setLimits(projectId, { softBytes: 0, hardBytes: 0 });
    this.#ids.free(projectId);
  }

  /**
   * Reads which ids are taken (see the class comment), once, or again with `reload`. Runs inside the queue. Two
   * folders with the same id (copied by hand with their attributes) are logged; the first keeps it.
   */
  async #loadIds(quota: XfsProjectQuota, options: { reload?: boolean } = {}): Promise<void> {
    if (this.#idsLoaded && !options.reload) return;
    const table = new ProjectIdTable(this.#ids.first, this.#ids.last);
    const area = this.#options.workingArea;
    const entries = await readdir(area, { withFileTypes: true }).catch((error: unknown) => {
      if (errnoCode(error) === 'ENOENT') return [];
      throw error;
    });
    const folders = entries.filter((e) => e.isDirectory()).map((e) => path.join(area, e.name));
    const ids = new Map<string, number | undefined>();
    for (let i = 0; i < folders.length; i += scanConcurrency) {
      const batch = folders.slice(i, i + scanConcurrency);
      const read = await Promise.all(batch.map((folder) => quota.projectOf(folder)));
      batch.forEach((folder, j) => ids.set(folder, read[j]));
    }
    for (const [folder, id] of ids) {
      if (id === undefined || !table.inRange(id)) continue;
      const owner = table.ownerOf(id);
      if (owner !== undefined) {
        this.#log.error('two workspace folders carry the same XFS project id; their usage is counted together', { projectId: id, folders: [owner, folder] });
        continue;
      }
      table.claim(id, folder);
    }
    for (const id of (await quota.report(table.first, table.last)).keys()) {
      if (table.ownerOf(id) === undefined) table.claim(id, '');
    }
    // Ids claimed in memory since the last load (provisions of this process) stay taken.
    if (this.#idsLoaded) {
      for (let id = table.first; id <= table.last; id++) {
        const mine = this.#ids.ownerOf(id);
        if (mine !== undefined && table.ownerOf(id) === undefined && (await stat(mine).then(() => true, () => false))) table.claim(id, mine);
      }
    }
    this.#replaceIds(table);
    this.#idsLoaded = true;
  }

  #replaceIds(table: ProjectIdTable): void {
    for (let id = this.#ids.first; id <= this.#ids.last; id++) {
      const owner = table.ownerOf(id);
      if (owner === undefined) this.#ids.free(id);
      else this.#ids.claim(id, owner);
    }
  }

  /** After a restart: the handle's folder keeps (or gets back) its id, and its limits are set again. */
  async #reattach(quota: XfsProjectQuota, handle: QuotaHandle, data: XfsHandleData): Promise<void> {
    const dir = path.resolve(handle.dir);
    const owner = this.#ids.ownerOf(data.projectId);
    if (owner && owner !== dir) {
      throw new WsdError('FAILED_PRECONDITION', `its project id ${data.projectId} is set on another folder, ${owner}`);
    }
    const onDisk = await quota.projectOf(dir);
    this.#ids.claim(data.projectId, dir);
    if (onDisk === undefined) {
      // An interrupted release, or an operator: nothing to limit; the id stays taken until release frees it.
      this.#log.warn('the folder of this workspace is gone; its project id stays reserved until it is disposed', { workspaceId: handle.workspaceId, dir, projectId: data.projectId });
      return;
    }
    if (onDisk !== data.projectId) {
      this.#log.warn('workspace folder lost its project id; setting it again on everything in it', { workspaceId: handle.workspaceId, dir, found: onDisk, projectId: data.projectId });
      await quota.assignProject(dir, data.projectId, { recursive: true });
    }
    await quota.setLimits(data.projectId, this.#limits(handle.limitBytes, data.mode));
  }

  /**
   * At start: ids in the range with limits but no usage and no folder or handle are what an interrupted provision or
   * release left; their limits are cleared and they are free again. Ids with usage but no folder (files with the
   * id outside the working area's folders) stay taken and are logged. Folders of the workspaces core asks to leave
   * alone keep their ids without help: every folder's id counts as taken.
   */
  async #sweepLeftovers(quota: XfsProjectQuota, named: Set<number>): Promise<void> {
    const unowned = this.#ids.unowned().filter((id) => !named.has(id));
    if (unowned.length === 0) return;
    const report = await quota.report(this.#ids.first, this.#ids.last);
    for (const id of unowned) {
      const line = report.get(id);
      if (!line) continue; // a handle nobody can read names it: left alone
      if (line.usedBytes > 0) {
        this.#log.warn('an XFS project id of the configured range holds data outside any workspace folder; it stays reserved', { projectId: id, usedBytes: line.usedBytes });
        continue;
      }
      try {
        await quota.setLimits(id, { softBytes: 0, hardBytes: 0 });
        this.#ids.free(id);
        this.#log.warn('cleared the limits of an XFS project id no workspace uses (left by an interrupted provision or release)', { projectId: id });
      } catch (error) {
        this.#log.error('cannot clear the limits of an unused XFS project id; it stays reserved', { projectId: id, error: error as Error });
      }
    }
  }

  /** The handle's data, after the contract's checks: another strategy's handle, an unknown version. */
  #data(handle: QuotaHandle): XfsHandleData {
    assertOwnQuotaHandle(handle, this.id);
    const data = handle.data ?? {};
    if (data.dataVersion !== dataVersion) {
      throw new WsdError('FAILED_PRECONDITION', `xfs quota handle of workspace ${handle.workspaceId} has data version ${JSON.stringify(data.dataVersion)}; this wsd knows version ${dataVersion} (was it written by a newer wsd?)`);
    }
    if (typeof data.projectId !== 'number' || !Number.isSafeInteger(data.projectId) || data.projectId < 1 || (data.mode !== 'soft' && data.mode !== 'hard')) {
      throw new WsdError('FAILED_PRECONDITION', `xfs quota handle of workspace ${handle.workspaceId} names no valid project id and mode`);
    }
    return { dataVersion, projectId: data.projectId, mode: data.mode };
  }

  /** Runs `task` after every task queued before it. */
  #serialized<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => {});
    return run;
  }
}

/** `dir`, or its nearest existing ancestor, resolved on disk. */
async function nearestExisting(dir: string): Promise<string> {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const real = await realpath(current).catch(() => undefined);
    if (real) return real;
    if (path.dirname(current) === current) return current;
  }
}

function assertLimit(limitBytes: number): void {
  if (!Number.isSafeInteger(limitBytes) || limitBytes < 0) {
    throw new WsdError('INVALID_ARGUMENT', `limitBytes must be a non-negative integer, got ${limitBytes}`, { field: 'limitBytes' });
  }
}

function throwIfCancelled(signal: AbortSignal | undefined, workspaceId: string): void {
  if (signal?.aborted) throw new WsdError('CANCELLED', `provisioning the XFS project quota of workspace ${workspaceId} was cancelled`);
}

