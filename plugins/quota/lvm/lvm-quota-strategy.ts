import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, rmdir, statfs } from 'node:fs/promises';
import path from 'node:path';
import {
  WsdError,
  assertOwnQuotaHandle,
  errnoCode,
  makeFolders,
  mountsAtOrBelow,
  quotaHandleVersion,
  mountTablePath,
  readMountTable,
  runCommand,
  toWsdError,
  type HealthResult,
  type Logger,
  type QuotaHandle,
  type QuotaRecoverResult,
  type QuotaStrategy,
  type QuotaUsage,
  type RunCommandOptions,
  assertValidWorkspaceId,
  reusedProbe,
} from '../../../core/plugin-api.js';
import { assertFsType, loopFileSystems, type CommandBase, type LoopFsType } from '../loop/loop-file-systems.js';
import { Lvm, type LogicalVolume } from './lvm-commands.js';

export interface LvmQuotaOptions {
  /** The working area: its path names this daemon's volumes (a tag), so two daemons sharing a pool keep apart. */
  workingArea: string;
  volumeGroup: string;
  thinPool: string;
  fsType: LoopFsType;
  /** Volume size for a workspace provisioned with `limitBytes: 0` (a volume always has a size). */
  defaultSizeBytes: number;
  /** Options for mounting each volume (`-o`); '' for none. */
  mountOptions: string;
  /** Provisioning and growing are refused while the pool's data or metadata use is at or above this percentage. */
  maxPoolPercent: number;
  /** Extra `--config` for every lvm command ('' for none). */
  lvmConfig: string;
  commandTimeoutMs: number;
  healthIntervalMs: number;
  log: Logger;
}

/** Version of what this strategy keeps in `handle.data`. */
const dataVersion = 1;

interface LvmHandleData {
  dataVersion: typeof dataVersion;
  volumeGroup: string;
  volume: string;
  fsType: LoopFsType;
}

/** Every volume this strategy makes carries this tag, one naming its working area, and one naming its workspace. */
const strategyTag = 'wsd';
const workspaceTagPrefix = 'wsd-workspace=';

/**
 * Quota contract v1 with LVM thin volumes: each workspace folder is the mount point of its own thin volume in the
 * configured volume group and thin pool, formatted ext4 or xfs. The volume's size is the limit: writing past it fails
 * with ENOSPC inside that workspace only. Thin volumes take pool space only as they are written, so the pool may be
 * smaller than the sum of the limits; the pool must fail writes when full (`lv_when_full` = error, checked at start)
 * instead of queueing them for 60 s, and provisioning stops at `maxPoolPercent`.
 *
 * Capabilities: enforces, reports usage (statfs), resizable (grows only, online: lvextend + resize2fs/xfs_growfs),
 * no soft limits (a volume's size is its one limit: core gives `provision` the final size).
 */
export class LvmQuotaStrategy implements QuotaStrategy {
  readonly id = 'lvm';
  readonly capabilities = { enforces: true, reportsUsage: true, resizable: true, softLimits: false } as const;
  readonly #options: LvmQuotaOptions;
  readonly #log: Logger;
  readonly #lvm: Lvm;
  /** Names the volumes of this daemon's working area. */
  readonly #areaTag: string;
  readonly #health: () => Promise<HealthResult>;

  constructor(options: LvmQuotaOptions) {
    this.#options = { ...options, workingArea: path.resolve(options.workingArea) };
    this.#health = reusedProbe(options.healthIntervalMs, () => this.#probeHealth());
    this.#log = options.log;
    this.#lvm = new Lvm(options.commandTimeoutMs, options.lvmConfig);
    this.#areaTag = `wsd-area=${createHash('sha256').update(this.#options.workingArea).digest('hex').slice(0, 16)}`;
  }

  /**
   * Why this strategy cannot work on this host, or undefined when it can: root, lvm and mkfs installed, the volume
   * group and an active thin pool in it that fails writes when full. Plugin creation skips the plugin with it.
   */
  async unusableReason(): Promise<string | undefined> {
    if (process.getuid?.() !== 0) return 'creating and mounting volumes needs root (run wsd as root, privileged in a container)';
    try {
      await this.#pool();
      const check = { timeoutMs: this.#options.commandTimeoutMs, context: `fsType ${this.#options.fsType}` };
      if (this.#fs().type === 'xfs') await runCommand('mkfs.xfs', ['-V'], check);
      else await runCommand('mkfs.ext4', ['-V'], check);
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  }

  async provision({ workspaceId, dir, limitBytes, signal }: { workspaceId: string; dir: string; limitBytes: number; signal?: AbortSignal }): Promise<QuotaHandle> {
    assertLimit(limitBytes);
    const fs = this.#fs();
    const size = limitBytes === 0 ? this.#options.defaultSizeBytes : limitBytes;
    if (size < fs.minBytes) {
      throw new WsdError('INVALID_ARGUMENT', `limitBytes ${size} is too small for quota strategy "lvm" with fsType ${fs.type}: at least ${fs.minBytes} bytes (${fs.minReason})`, { field: 'limitBytes' });
    }
    assertValidWorkspaceId(workspaceId, 'workspaceId');
    throwIfCancelled(signal, workspaceId);
    dir = path.resolve(dir);
    const { volumeGroup: vg } = this.#options;
    await makeFolders(path.dirname(dir));
    try {
      // Not recursive: an existing folder (or anything else at `dir`) is refused, never adopted.
      await mkdir(dir, 0o755);
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') throw new WsdError('ALREADY_EXISTS', `workspace folder ${dir} exists already`);
      throw new WsdError('INTERNAL', `cannot create ${dir}: ${(error as Error).message}`, { cause: error });
    }
    dir = await mountTablePath(dir); // what the mount table will name it
    const name = `wsd-${randomBytes(6).toString('hex')}`;
    // Undone in reverse on any failure: no folder, volume or mount is left behind.
    const undo: Array<{ what: string; run: () => Promise<unknown> }> = [{ what: `remove ${dir}`, run: () => rmdir(dir) }];
    try {
      await this.#assertPoolRoom(`workspace ${workspaceId}`, signal);
      throwIfCancelled(signal, workspaceId);
      await this.#lvm.createThin({ vg, pool: this.#options.thinPool, name, sizeBytes: size, tags: [strategyTag, this.#areaTag, `${workspaceTagPrefix}${workspaceId}`], ...(signal ? { signal } : {}) });
      undo.push({ what: `remove ${vg}/${name}`, run: () => this.#lvm.remove(vg, name) });
      const volume = await this.#volume(name);
      if (!volume?.dmPath) throw new WsdError('INTERNAL', `thin volume ${vg}/${name} was created but is not active`);
      throwIfCancelled(signal, workspaceId);
      // A new thin volume has no blocks to discard.
      await fs.format(volume.dmPath, this.#commandBase(signal), true);
      throwIfCancelled(signal, workspaceId);
      undo.push({ what: `unmount ${dir}`, run: () => this.#unmount(dir, volume, workspaceId) });
      await this.#mount(volume, dir, fs.type);
      // mkfs.ext4 makes lost+found; a workspace starts empty (a git clone into the folder wants it so).
      await rmdir(path.join(dir, 'lost+found')).catch((error: unknown) => {
        if (errnoCode(error) !== 'ENOENT') throw error;
      });
      throwIfCancelled(signal, workspaceId);
      const data: LvmHandleData = { dataVersion, volumeGroup: vg, volume: name, fsType: fs.type };
      return { version: quotaHandleVersion, strategy: this.id, workspaceId, dir, limitBytes: volume.sizeBytes, data: { ...data } };
    } catch (error) {
      for (const step of undo.reverse()) {
        await step.run().catch((e: unknown) => this.#log.error('cannot undo a failed lvm provision; the start-up sweep removes what is left', { workspaceId, step: step.what, error: e as Error }));
      }
      throw toWsdError(error, 'INTERNAL', `cannot provision a thin volume for workspace ${workspaceId}`);
    }
  }

  async setLimit({ handle, limitBytes, mode }: { handle: QuotaHandle; limitBytes: number; mode: 'soft' | 'hard' }): Promise<QuotaHandle> {
    const data = this.#data(handle);
    assertLimit(limitBytes);
    if (mode === 'soft') throw new WsdError('FAILED_PRECONDITION', 'quota strategy "lvm" has no soft limits: a volume\'s size is its one limit');
    const size = limitBytes === 0 ? this.#options.defaultSizeBytes : limitBytes;
    if (size === handle.limitBytes) return { ...handle };
    if (size < handle.limitBytes) {
      throw new WsdError('FAILED_PRECONDITION', `quota strategy "lvm" cannot shrink workspace ${handle.workspaceId} from ${handle.limitBytes} to ${size} bytes: volumes only grow`, { field: 'limitBytes' });
    }
    const dir = await mountTablePath(handle.dir);
    const volume = await this.#volume(data.volume, data.volumeGroup);
    if (!volume || !(await this.#mountedAt(volume, dir))) {
      throw new WsdError('FAILED_PRECONDITION', `cannot grow workspace ${handle.workspaceId}: its volume ${data.volumeGroup}/${data.volume} is not mounted at ${dir}`);
    }
    await this.#assertPoolRoom(`growing workspace ${handle.workspaceId}`);
    await this.#lvm.extend(data.volumeGroup, data.volume, size);
    await loopFileSystems[data.fsType].growOnline({ dir, device: volume.dmPath }, this.#commandBase());
    const grown = await this.#volume(data.volume, data.volumeGroup);
    return { ...handle, limitBytes: grown?.sizeBytes ?? size, data: { ...data } };
  }

  async usage({ handle }: { handle: QuotaHandle }): Promise<QuotaUsage> {
    this.#data(handle);
    const dir = await mountTablePath(handle.dir);
    const mounted = (await readMountTable()).some((m) => m.mountPoint === dir);
    if (!mounted) throw new WsdError('NOT_FOUND', `the volume of workspace ${handle.workspaceId} is not mounted at ${dir}`);
    const fs = await statfs(dir);
    // Used = what the workspace can no longer write: its files plus the file system's own metadata, so that used +
    // available = the limit, and a full workspace shows used = limit.
    return { usedBytes: Math.max(0, handle.limitBytes - fs.bavail * fs.bsize), limitBytes: handle.limitBytes };
  }

  async release({ handle }: { handle: QuotaHandle }): Promise<void> {
    const data = this.#data(handle);
    const dir = await mountTablePath(handle.dir);
    const volume = await this.#volume(data.volume, data.volumeGroup);
    const mounts = await readMountTable();
    // Anything else mounted in the folder (a bind mount a runtime left) would be deleted through, or keep ours busy.
    const inside = await mountsAtOrBelow(dir);
    const foreign = inside.filter((point) => !(volume?.device && point === dir && mounts.some((m) => m.mountPoint === point && m.device === volume.device)));
    if (foreign.length > 0) {
      throw new WsdError('UNAVAILABLE', `cannot release workspace ${handle.workspaceId}: a file system that is not its volume is mounted at ${foreign.join(', ')}; unmount it first`);
    }
    // 1. unmount, 2. remove the volume, 3. the folder.
    if (volume) {
      await this.#unmount(dir, volume, handle.workspaceId);
      await this.#lvm.remove(data.volumeGroup, data.volume);
    }
    try {
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch (error) {
      throw new WsdError(errnoCode(error) === 'EBUSY' ? 'UNAVAILABLE' : 'INTERNAL', `cannot remove workspace folder ${dir}: ${(error as Error).message}`, { cause: error });
    }
  }

  async recover({ handles, leaveAlone = [] }: { handles: QuotaHandle[]; leaveAlone?: string[] }): Promise<QuotaRecoverResult> {
    for (const handle of handles) if (handle.strategy !== this.id) assertOwnQuotaHandle(handle, this.id); // the whole call fails
    await this.#pool().catch((error: unknown) => {
      throw new WsdError('FAILED_PRECONDITION', (error as Error).message);
    });
    const failed: QuotaRecoverResult['failed'] = [];
    const usable: Array<{ handle: QuotaHandle; data: LvmHandleData }> = [];
    // Volumes no leftover sweep may touch: every handle's (also those it cannot use) and those of the workspaces core
    // keeps apart.
    const named = new Set<string>();
    const spared = new Set(leaveAlone);
    for (const handle of handles) {
      if (typeof handle.data?.volume === 'string') named.add(handle.data.volume);
      spared.add(handle.workspaceId);
      try {
        usable.push({ handle, data: this.#data(handle) });
      } catch (error) {
        failed.push({ workspaceId: handle.workspaceId, error: toWsdError(error) });
      }
    }
    await this.#sweepLeftovers(named, spared);
    for (const { handle, data } of usable) {
      try {
        await this.#reattach(handle, data);
      } catch (error) {
        failed.push({ workspaceId: handle.workspaceId, error: toWsdError(error, 'INTERNAL', `cannot re-attach the thin volume of workspace ${handle.workspaceId}`) });
      }
    }
    return { failed };
  }

  /** Whether volumes can be made now: the pool active and below `maxPoolPercent`. Reused for `healthIntervalMs`. */
  checkHealth(): Promise<HealthResult> {
    return this.#health();
  }

  async #probeHealth(): Promise<HealthResult> {
    try {
      const pool = await this.#pool();
      const full = fullness(pool);
      if (full >= this.#options.maxPoolPercent) {
        return { status: 'degraded', reason: `lvm quota: thin pool ${this.#poolName()} is ${full.toFixed(1)} % full (new workspaces are refused from ${this.#options.maxPoolPercent} %); extend it` };
      }
      return { status: 'ok' };
    } catch (error) {
      return { status: 'failing', reason: `lvm quota: ${(error as Error).message}` };
    }
  }

  #fs() {
    return loopFileSystems[this.#options.fsType];
  }

  #poolName(): string {
    return `${this.#options.volumeGroup}/${this.#options.thinPool}`;
  }

  /** The thin pool, checked: the volume group and the pool exist, the pool is active and fails writes when full. */
  async #pool(): Promise<LogicalVolume> {
    const { volumeGroup: vg, thinPool } = this.#options;
    if (!(await this.#lvm.hasVolumeGroup(vg))) {
      throw new WsdError('FAILED_PRECONDITION', `volume group ${vg} does not exist (quota.lvm.volumeGroup; vgs lists those there are)`, { field: 'quota.lvm.volumeGroup' });
    }
    const pool = (await this.#lvm.volumes(vg)).find((v) => v.name === thinPool);
    if (!pool || pool.segtype !== 'thin-pool') {
      throw new WsdError('FAILED_PRECONDITION', `${vg}/${thinPool} is ${pool ? `a ${pool.segtype} volume` : 'missing'}, not a thin pool (quota.lvm.thinPool; make one with lvcreate --type thin-pool)`, { field: 'quota.lvm.thinPool' });
    }
    if (pool.whenFull !== 'error') {
      throw new WsdError(
        'FAILED_PRECONDITION',
        `thin pool ${vg}/${thinPool} queues writes when it is full (lv_when_full "${pool.whenFull || 'queue'}"): a full pool would hang every workspace for 60 s and then fail it; run lvchange --errorwhenfull y ${vg}/${thinPool}`,
        { field: 'quota.lvm.thinPool' },
      );
    }
    if (pool.attr[4] !== 'a') throw new WsdError('FAILED_PRECONDITION', `thin pool ${vg}/${thinPool} is not active; run lvchange --activate y ${vg}/${thinPool}`, { field: 'quota.lvm.thinPool' });
    return pool;
  }

  async #assertPoolRoom(what: string, signal?: AbortSignal): Promise<void> {
    const pool = (await this.#lvm.volumes(this.#options.volumeGroup, signal ? { signal } : {})).find((v) => v.name === this.#options.thinPool);
    if (!pool) throw new WsdError('FAILED_PRECONDITION', `thin pool ${this.#poolName()} is gone`);
    const full = fullness(pool);
    if (full >= this.#options.maxPoolPercent) {
      throw new WsdError('RESOURCE_EXHAUSTED', `no room for ${what}: thin pool ${this.#poolName()} is ${full.toFixed(1)} % full (quota.lvm.maxPoolPercent ${this.#options.maxPoolPercent})`);
    }
  }

  async #volume(name: string, vg = this.#options.volumeGroup): Promise<LogicalVolume | undefined> {
    return (await this.#lvm.volumes(vg)).find((v) => v.name === name);
  }

  async #mountedAt(volume: LogicalVolume, dir: string): Promise<boolean> {
    return volume.device !== '' && (await readMountTable()).some((m) => m.mountPoint === dir && m.device === volume.device);
  }

  async #mount(volume: LogicalVolume, dir: string, fsType: LoopFsType): Promise<void> {
    const options = this.#options.mountOptions ? ['-o', this.#options.mountOptions] : [];
    await runCommand('mount', ['-t', fsType, ...options, volume.dmPath, dir], { ...this.#commandBase(), context: `cannot mount ${volume.dmPath} at ${dir}` });
  }

  /** Unmounts the volume from `dir` if it is mounted there; busy (a process has a file open in it) is UNAVAILABLE. */
  async #unmount(dir: string, volume: LogicalVolume, workspaceId: string): Promise<void> {
    if (!(await this.#mountedAt(volume, dir))) return;
    await runCommand('umount', [dir], {
      ...this.#commandBase(),
      context: `cannot unmount ${dir} (workspace ${workspaceId})`,
      // umount exits 32 for every failure; "target is busy" is a process holding a file: retry later.
      errorCode: (f) => (/busy/i.test(f.stderr) ? 'UNAVAILABLE' : 'INTERNAL'),
    });
  }

  /** After a restart: activates and mounts the volume again where a reboot (or a crash between steps) left it. */
  async #reattach(handle: QuotaHandle, data: LvmHandleData): Promise<void> {
    const dir = await mountTablePath(handle.dir);
    const log = this.#log.child({ workspaceId: handle.workspaceId });
    let volume = await this.#volume(data.volume, data.volumeGroup);
    if (!volume) {
      // An interrupted release, or an operator: nothing to mount; release later removes the folder.
      log.warn('the thin volume of this workspace is gone; nothing to mount', { volume: `${data.volumeGroup}/${data.volume}`, dir });
      return;
    }
    if (await this.#mountedAt(volume, dir)) return; // the daemon restarted, the host did not
    if (!volume.device) {
      await this.#lvm.activate(data.volumeGroup, data.volume);
      volume = (await this.#volume(data.volume, data.volumeGroup))!;
    }
    const strays = (await readMountTable()).filter((m) => m.device === volume!.device);
    if (strays.length > 0) {
      throw new WsdError('FAILED_PRECONDITION', `its volume ${data.volumeGroup}/${data.volume} is mounted at ${strays.map((m) => m.mountPoint).join(', ')}, not at ${dir}; unmount it there`);
    }
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const content = await readdir(dir);
    if (content.length > 0) {
      throw new WsdError('FAILED_PRECONDITION', `its folder ${dir} holds files (${content.slice(0, 3).join(', ')}${content.length > 3 ? ', ...' : ''}) while its volume is not mounted: mounting would hide them; move them away`);
    }
    const fs = loopFileSystems[data.fsType];
    await fs.repair?.(volume.dmPath, this.#commandBase());
    await this.#mount(volume, dir, fs.type);
    log.info('thin volume mounted again', { volume: `${data.volumeGroup}/${data.volume}`, dir });
  }

  /**
   * At start: volumes of this working area (by tag) that no handle names, of no workspace core keeps apart, and not
   * in use, are what an interrupted provision left (a crash before core persisted the handle): removed and logged.
   * A failure is logged and the sweep goes on: a leftover must not keep the node from starting.
   */
  async #sweepLeftovers(named: Set<string>, spared: Set<string>): Promise<void> {
    const volumes = await this.#lvm.volumes(this.#options.volumeGroup);
    for (const volume of volumes) {
      if (!volume.tags.includes(strategyTag) || !volume.tags.includes(this.#areaTag) || named.has(volume.name)) continue;
      const workspaceId = volume.tags.find((t) => t.startsWith(workspaceTagPrefix))?.slice(workspaceTagPrefix.length);
      if (workspaceId !== undefined && spared.has(workspaceId)) continue;
      const where = `${this.#options.volumeGroup}/${volume.name}`;
      if (volume.attr[5] === 'o') {
        this.#log.warn('a thin volume no workspace names is in use; left alone', { volume: where, workspaceId });
        continue;
      }
      try {
        await this.#lvm.remove(this.#options.volumeGroup, volume.name);
        this.#log.warn('removed a thin volume no workspace names (left by an interrupted provision)', { volume: where, workspaceId });
      } catch (error) {
        this.#log.error('cannot remove a thin volume no workspace names; it stays until the next start', { volume: where, error: error as Error });
      }
    }
  }

  /** The handle's data, after the contract's checks: another strategy's handle, an unknown version. */
  #data(handle: QuotaHandle): LvmHandleData {
    assertOwnQuotaHandle(handle, this.id);
    const data = handle.data ?? {};
    if (data.dataVersion !== dataVersion) {
      throw new WsdError('FAILED_PRECONDITION', `lvm quota handle of workspace ${handle.workspaceId} has data version ${JSON.stringify(data.dataVersion)}; this wsd knows version ${dataVersion} (was it written by a newer wsd?)`);
    }
    if (typeof data.volumeGroup !== 'string' || typeof data.volume !== 'string' || typeof data.fsType !== 'string' || !isLvmName(data.volumeGroup) || !isLvmName(data.volume)) {
      throw new WsdError('FAILED_PRECONDITION', `lvm quota handle of workspace ${handle.workspaceId} names no valid volume or file system type`);
    }
    // The state file is data, not authority: release removes the volume it names, so only in the configured group.
    if (data.volumeGroup !== this.#options.volumeGroup) {
      throw new WsdError('FAILED_PRECONDITION', `lvm quota handle of workspace ${handle.workspaceId} names volume group ${data.volumeGroup}, not the configured ${this.#options.volumeGroup}`);
    }
    assertFsType(data.fsType);
    return { dataVersion, volumeGroup: data.volumeGroup, volume: data.volume, fsType: data.fsType };
  }

  /** Deadline, signal and error mapping of every command but lvm's own. */
  #commandBase(signal?: AbortSignal): CommandBase {
    return { timeoutMs: this.#options.commandTimeoutMs, ...(signal ? { signal } : {}), errorCode: outOfSpaceOr('INTERNAL') };
  }
}

/** A pool's fullness: the larger of its data and metadata use, in percent. */
function fullness(pool: LogicalVolume): number {
  return Math.max(Number.isFinite(pool.dataPercent) ? pool.dataPercent : 0, Number.isFinite(pool.metadataPercent) ? pool.metadataPercent : 0);
}

/** Names of volume groups and volumes as LVM accepts them (and never an option: no leading '-'). */
export function isLvmName(name: string): boolean {
  return /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$/.test(name) && name !== '.' && name !== '..';
}

/** Maps ENOSPC-looking command failures (mkfs on a full pool) to RESOURCE_EXHAUSTED. */
function outOfSpaceOr(fallback: 'INTERNAL'): RunCommandOptions['errorCode'] {
  return (failure) => (/no space left|ENOSPC|disk full/i.test(failure.stderr) ? 'RESOURCE_EXHAUSTED' : failure.reason === 'exit' ? fallback : undefined);
}

function assertLimit(limitBytes: number): void {
  if (!Number.isSafeInteger(limitBytes) || limitBytes < 0) {
    throw new WsdError('INVALID_ARGUMENT', `limitBytes must be a non-negative integer, got ${limitBytes}`, { field: 'limitBytes' });
  }
}

function throwIfCancelled(signal: AbortSignal | undefined, workspaceId: string): void {
  if (signal?.aborted) throw new WsdError('CANCELLED', `provisioning the thin volume of workspace ${workspaceId} was cancelled`);
}
