import { constants } from 'node:fs';
import { access, mkdir, open, readdir, realpath, rm, rmdir, stat, statfs, truncate } from 'node:fs/promises';
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
  isValidWorkspaceId,
  reusedProbe,
} from '../../../core/plugin-api.js';
import { attachedLoopDevices, type LoopDevice } from './loop-devices.js';
import { assertFsType, loopFileSystems, type LoopFsType } from './loop-file-systems.js';

export interface LoopQuotaOptions {
  /** Folder of the `<workspaceId>.img` images; this strategy's alone (unnamed images in it are deleted at start). */
  imagesDir: string;
  fsType: LoopFsType;
  /** Image size for a workspace provisioned with `limitBytes: 0` (a volume always has a size). */
  defaultSizeBytes: number;
  /** Reserve every image's blocks up front (fallocate) instead of a sparse file. */
  preallocate: boolean;
  /** Mount with `discard`: files deleted in a workspace give their blocks back to the images' file system. */
  discard: boolean;
  /** Deadline of each command (mkfs, mount, umount, losetup, resize). */
  commandTimeoutMs: number;
  /** How long a health check result is reused. */
  healthIntervalMs: number;
  log: Logger;
}

/** Version of what this strategy keeps in `handle.data`. */
const dataVersion = 1;

interface LoopHandleData {
  dataVersion: typeof dataVersion;
  image: string;
  fsType: LoopFsType;
}

/**
 * Quota contract v1 with loop devices: each workspace folder is the mount point of its own file system, an image
 * file `<imagesDir>/<workspaceId>.img` (sparse unless `preallocate`) formatted ext4 or xfs and mounted with
 * `mount -o loop`. The image's size is the limit: writing past it fails with ENOSPC inside that workspace only.
 *
 * Loop devices are attached by mount(8) with autoclear, so unmounting detaches them; a loop device left attached
 * without a mount (a crash between the two) is detached by `release` and by the start-up sweep.
 *
 * Capabilities: enforces, reports usage (statfs), resizable (grows only: xfs online; ext4 online where the kernel
 * allows it, otherwise unmounted for the resize, which needs the folder not busy), no soft limits (an image's size
 * is its one limit, so core gives `provision` the final size and skips the soft phase).
 */
export class LoopQuotaStrategy implements QuotaStrategy {
  readonly id = 'loop';
  readonly capabilities = { enforces: true, reportsUsage: true, resizable: true, softLimits: false } as const;
  readonly #options: LoopQuotaOptions;
  readonly #log: Logger;
  /** Serializes attaching and detaching: loop device allocation is host-wide state. */
  #attachQueue: Promise<unknown> = Promise.resolve();
  readonly #health: () => Promise<HealthResult>;

  /** `imagesDir` must exist and be given as its real path: the kernel names loop devices' backing files so (plugin.ts). */
  constructor(options: LoopQuotaOptions) {
    this.#options = options;
    this.#health = reusedProbe(options.healthIntervalMs, () => this.#probeHealth());
    this.#log = options.log;
  }

  async provision({ workspaceId, dir, limitBytes, signal }: { workspaceId: string; dir: string; limitBytes: number; signal?: AbortSignal }): Promise<QuotaHandle> {
    assertLimit(limitBytes);
    const fs = loopFileSystems[this.#options.fsType];
    const size = limitBytes === 0 ? this.#options.defaultSizeBytes : limitBytes;
    if (size < fs.minBytes) {
      throw new WsdError('INVALID_ARGUMENT', `limitBytes ${size} is too small for quota strategy "loop" with fsType ${fs.type}: at least ${fs.minBytes} bytes (${fs.minReason})`, { field: 'limitBytes' });
    }
    assertValidWorkspaceId(workspaceId, 'workspaceId');
    throwIfCancelled(signal, workspaceId);
    dir = path.resolve(dir);
    const image = this.#imagePath(workspaceId);
    await makeFolders(path.dirname(dir));
    try {
      // Not recursive: an existing folder (or anything else at `dir`) is refused, never adopted.
      await mkdir(dir, 0o755);
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') throw new WsdError('ALREADY_EXISTS', `workspace folder ${dir} exists already`);
      throw new WsdError('INTERNAL', `cannot create ${dir}: ${(error as Error).message}`, { cause: error });
    }
    // Undone in reverse on any failure: no folder, image, loop device or mount is left behind.
    const undo: Array<{ what: string; run: () => Promise<unknown> }> = [{ what: `remove ${dir}`, run: () => rmdir(dir) }];
    try {
      await this.#createImage(image, size);
      undo.push({ what: `delete ${image}`, run: () => rm(image, { force: true }) });
      throwIfCancelled(signal, workspaceId);
      await fs.format(image, this.#commandBase(signal), this.#options.preallocate);
      throwIfCancelled(signal, workspaceId);
      undo.push({ what: `detach ${image}`, run: () => this.#unmountAndDetach(image) });
      await this.#mount(image, dir, fs.type);
      // mkfs.ext4 makes lost+found; a workspace starts empty (a git clone into the folder wants it so). e2fsck makes
      // it again when it needs one.
      await rmdir(path.join(dir, 'lost+found')).catch((error: unknown) => {
        if (errnoCode(error) !== 'ENOENT') throw error;
      });
      throwIfCancelled(signal, workspaceId);
    } catch (error) {
      for (const step of undo.reverse()) {
        await step.run().catch((e: unknown) => this.#log.error('cannot undo a failed loop provision; the start-up sweep removes what is left', { workspaceId, step: step.what, error: e as Error }));
      }
      throw toWsdError(error, 'INTERNAL', `cannot provision a loop file system for workspace ${workspaceId}`);
    }
    const data: LoopHandleData = { dataVersion, image, fsType: fs.type };
    return { version: quotaHandleVersion, strategy: this.id, workspaceId, dir, limitBytes: size, data: { ...data } };
  }

  async setLimit({ handle, limitBytes, mode }: { handle: QuotaHandle; limitBytes: number; mode: 'soft' | 'hard' }): Promise<QuotaHandle> {
    const data = this.#data(handle);
    assertLimit(limitBytes);
    if (mode === 'soft') throw new WsdError('FAILED_PRECONDITION', 'quota strategy "loop" has no soft limits: an image\'s size is its one limit');
    const size = limitBytes === 0 ? this.#options.defaultSizeBytes : limitBytes;
    if (size === handle.limitBytes) return { ...handle };
    if (size < handle.limitBytes) {
      throw new WsdError('FAILED_PRECONDITION', `quota strategy "loop" cannot shrink workspace ${handle.workspaceId} from ${handle.limitBytes} to ${size} bytes: images only grow`, { field: 'limitBytes' });
    }
    await this.#grow(handle, data, size);
    return { ...handle, limitBytes: size, data: { ...data } };
  }

  async usage({ handle }: { handle: QuotaHandle }): Promise<QuotaUsage> {
    this.#data(handle);
    if (!(await isMountPoint(handle.dir))) throw new WsdError('NOT_FOUND', `the loop file system of workspace ${handle.workspaceId} is not mounted at ${handle.dir}`);
    const fs = await statfs(handle.dir);
    // Used = what the workspace can no longer write: its files plus the file system's own metadata, so that used +
    // available = the limit, and a full workspace shows used = limit.
    return { usedBytes: Math.max(0, handle.limitBytes - fs.bavail * fs.bsize), limitBytes: handle.limitBytes };
  }

  async release({ handle }: { handle: QuotaHandle }): Promise<void> {
    const data = this.#data(handle);
    const dir = path.resolve(handle.dir);
    const ours = new Set((await this.#devicesOf(data.image)).map((d) => d.device));
    const mounts = await readMountTable();
    // Anything else mounted in the folder (a bind mount a runtime left) would be deleted through, or keep ours busy.
    const inside = await mountsAtOrBelow(dir);
    const foreign = inside.filter((point) => !mounts.some((m) => m.mountPoint === point && ours.has(m.device)));
    if (foreign.length > 0) {
      throw new WsdError('UNAVAILABLE', `cannot release workspace ${handle.workspaceId}: a file system that is not its image is mounted at ${foreign.join(', ')}; unmount it first`);
    }
    // 1. unmount (every mount of this image: normally just the folder), 2. detach, 3. delete the image, 4. the folder.
    await this.#unmountAndDetach(data.image, handle.workspaceId);
    await rm(data.image, { force: true });
    try {
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch (error) {
      throw new WsdError(errnoCode(error) === 'EBUSY' ? 'UNAVAILABLE' : 'INTERNAL', `cannot remove workspace folder ${dir}: ${(error as Error).message}`, { cause: error });
    }
  }

  async recover({ handles, leaveAlone = [] }: { handles: QuotaHandle[]; leaveAlone?: string[] }): Promise<QuotaRecoverResult> {
    const failed: QuotaRecoverResult['failed'] = [];
    const usable: Array<{ handle: QuotaHandle; data: LoopHandleData }> = [];
    // Images no leftover sweep may touch: every handle's (also those it cannot use) and the ids core keeps apart.
    const named = new Set<string>(leaveAlone.filter(isValidWorkspaceId).map((id) => this.#imagePath(id)));
    for (const handle of handles) {
      if (handle.strategy !== this.id) assertOwnQuotaHandle(handle, this.id); // another strategy's: the whole call fails
      if (isValidWorkspaceId(handle.workspaceId)) named.add(this.#imagePath(handle.workspaceId));
      if (typeof handle.data?.image === 'string') named.add(handle.data.image);
    }
    for (const handle of handles) {
      try {
        usable.push({ handle, data: this.#data(handle) });
      } catch (error) {
        failed.push({ workspaceId: handle.workspaceId, error: toWsdError(error) });
      }
    }
    await this.#sweepLeftovers(named);
    for (const { handle, data } of usable) {
      try {
        await this.#reattach(handle, data);
      } catch (error) {
        failed.push({ workspaceId: handle.workspaceId, error: toWsdError(error, 'INTERNAL', `cannot re-attach the loop file system of workspace ${handle.workspaceId}`) });
      }
    }
    return { failed };
  }

  /**
   * Whether loop file systems can be made now: the images folder is writable and a free loop device can be had
   * (`losetup --find`, which also exercises /dev/loop-control). Reused for `healthIntervalMs`.
   */
  checkHealth(): Promise<HealthResult> {
    return this.#health();
  }

  async #probeHealth(): Promise<HealthResult> {
    try {
      await access(this.#options.imagesDir, constants.W_OK);
    } catch (error) {
      return { status: 'failing', reason: `loop quota: the images folder ${this.#options.imagesDir} is not writable: ${(error as Error).message}` };
    }
    try {
      await runCommand('losetup', ['--find'], { timeoutMs: this.#options.commandTimeoutMs, context: 'loop quota: no free loop device' });
    } catch (error) {
      return { status: 'failing', reason: (error as Error).message };
    }
    return { status: 'ok' };
  }

  #imagePath(workspaceId: string): string {
    return path.join(this.#options.imagesDir, `${workspaceId}.img`);
  }

  /** The handle's data, after the contract's checks: another strategy's handle, an unknown version. */
  #data(handle: QuotaHandle): LoopHandleData {
    assertOwnQuotaHandle(handle, this.id);
    const data = handle.data ?? {};
    if (data.dataVersion !== dataVersion) {
      throw new WsdError('FAILED_PRECONDITION', `loop quota handle of workspace ${handle.workspaceId} has data version ${JSON.stringify(data.dataVersion)}; this wsd knows version ${dataVersion} (was it written by a newer wsd?)`);
    }
    if (typeof data.image !== 'string' || typeof data.fsType !== 'string') {
      throw new WsdError('FAILED_PRECONDITION', `loop quota handle of workspace ${handle.workspaceId} names no image or file system type`);
    }
    // The state file is data, not authority: release deletes this path and detaches what backs it, so it must be an
    // image of this strategy's own folder.
    if (path.dirname(data.image) !== this.#options.imagesDir || !data.image.endsWith('.img')) {
      throw new WsdError('FAILED_PRECONDITION', `loop quota handle of workspace ${handle.workspaceId} names an image outside ${this.#options.imagesDir}`);
    }
    assertFsType(data.fsType);
    return { dataVersion, image: data.image, fsType: data.fsType };
  }

  /** What every command gets: the deadline, the signal (provision only), out-of-space mapped to RESOURCE_EXHAUSTED. */
  #commandBase(signal?: AbortSignal): RunCommandOptions {
    return { timeoutMs: this.#options.commandTimeoutMs, ...(signal ? { signal } : {}), errorCode: outOfSpaceOr('INTERNAL') };
  }

  /** Runs `task` after every attach or detach queued before it. */
  #serialized<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#attachQueue.then(task, task);
    this.#attachQueue = run.catch(() => {});
    return run;
  }

  async #createImage(image: string, size: number): Promise<void> {
    let file;
    try {
      file = await open(image, 'wx', 0o600);
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') {
        throw new WsdError('FAILED_PRECONDITION', `the loop image ${image} exists already (left by an earlier attempt; wsd removes unnamed images at start)`);
      }
      throw toWsdError(error, errnoCode(error) === 'ENOSPC' ? 'RESOURCE_EXHAUSTED' : 'INTERNAL', `cannot create the loop image ${image}`);
    }
    try {
      // Sparse unless asked otherwise: blocks are taken from the images' file system as the workspace writes.
      if (this.#options.preallocate) await runCommand('fallocate', ['--length', String(size), image], { timeoutMs: this.#options.commandTimeoutMs, errorCode: outOfSpaceOr('INTERNAL'), context: `cannot reserve ${size} bytes for ${image}` });
      else await file.truncate(size);
    } catch (error) {
      await file.close().catch(() => {});
      await rm(image, { force: true });
      throw toWsdError(error, errnoCode(error) === 'ENOSPC' || errnoCode(error) === 'EFBIG' ? 'RESOURCE_EXHAUSTED' : 'INTERNAL', `cannot size the loop image ${image}`);
    }
    await file.close();
  }

  #mount(image: string, dir: string, fsType: LoopFsType): Promise<void> {
    // mount -o loop attaches with autoclear: the device is detached when the file system is unmounted.
    const options = ['loop', ...(this.#options.discard && !this.#options.preallocate ? ['discard'] : [])].join(',');
    return this.#serialized(async () => {
      await runCommand('mount', ['-t', fsType, '-o', options, image, dir], {
        ...this.#commandBase(),
        context: `cannot mount the loop image ${image} at ${dir}`,
        errorCode: (f) => (/no free loop|could not find any free loop/i.test(f.stderr) ? 'RESOURCE_EXHAUSTED' : undefined),
      });
    });
  }

  /**
   * Unmounts every mount of the image's loop devices and detaches those devices; no-op when none is attached.
   * A busy file system (a process has a file open in it) is `UNAVAILABLE` and nothing further is done.
   */
  #unmountAndDetach(image: string, workspaceId?: string): Promise<void> {
    return this.#serialized(async () => {
      const devices = await this.#devicesOf(image);
      if (devices.length === 0) return;
      const ids = new Set(devices.map((d) => d.device));
      const mounts = (await readMountTable()).filter((m) => ids.has(m.device)).reverse();
      for (const mount of mounts) {
        await runCommand('umount', [mount.mountPoint], {
          ...this.#commandBase(),
          context: `cannot unmount ${mount.mountPoint}${workspaceId ? ` (workspace ${workspaceId})` : ''}`,
          // umount exits 32 for every failure; "target is busy" is a process holding a file: retry later.
          errorCode: (f) => (/busy/i.test(f.stderr) ? 'UNAVAILABLE' : 'INTERNAL'),
        });
      }
      await this.#detach(image);
    });
  }

  /** Detaches the image's loop devices. With autoclear the kernel may do it itself a moment after the unmount. */
  async #detach(image: string): Promise<void> {
    for (const device of await this.#devicesOf(image)) {
      await runCommand('losetup', ['--detach', device.path], { ...this.#commandBase(), context: `cannot detach ${device.path} from ${image}` }).catch(async (error: unknown) => {
        // Gone meanwhile (autoclear finished): detached is what was asked.
        if ((await this.#devicesOf(image)).some((d) => d.path === device.path)) throw error;
      });
    }
  }

  async #devicesOf(image: string): Promise<LoopDevice[]> {
    return (await attachedLoopDevices()).filter((d) => d.backingFile === image);
  }

  async #grow(handle: QuotaHandle, data: LoopHandleData, size: number): Promise<void> {
    const fs = loopFileSystems[data.fsType];
    const dir = path.resolve(handle.dir);
    const mounted = await this.#mountedDevice(data.image, dir);
    if (!mounted) throw new WsdError('FAILED_PRECONDITION', `cannot grow workspace ${handle.workspaceId}: its loop file system is not mounted at ${dir}`);
    const base = this.#commandBase();
    await this.#resizeImage(data.image, size);
    try {
      // The loop device keeps the size it had when attached until told to look again.
      await runCommand('losetup', ['--set-capacity', mounted.path], { ...base, context: `cannot resize ${mounted.path}` });
      try {
        await fs.growOnline({ dir, device: mounted.path }, base);
        return;
      } catch (error) {
        if (!fs.growOffline) throw error;
        this.#log.warn('online resize refused; growing the loop file system unmounted', { workspaceId: handle.workspaceId, error: error as Error });
      }
    } catch (error) {
      await truncate(data.image, handle.limitBytes).catch(() => {});
      throw toWsdError(error, 'INTERNAL', `cannot grow workspace ${handle.workspaceId}`);
    }
    // Offline: only while nothing holds the folder; the file system is back at its old or its new size either way.
    await this.#unmountAndDetach(data.image, handle.workspaceId).catch(async (error: unknown) => {
      await truncate(data.image, handle.limitBytes).catch(() => {});
      throw new WsdError(isWsdError(error, 'UNAVAILABLE') ? 'UNAVAILABLE' : 'INTERNAL', `cannot grow workspace ${handle.workspaceId}: this kernel grows ${fs.type} only unmounted, and ${(error as Error).message}`);
    });
    let failure: unknown;
    await fs.growOffline!(data.image, base).catch((error: unknown) => (failure = error));
    if (failure) await truncate(data.image, handle.limitBytes).catch(() => {});
    await this.#mount(data.image, dir, fs.type);
    if (failure) throw toWsdError(failure, 'INTERNAL', `cannot grow workspace ${handle.workspaceId}`);
  }

  async #resizeImage(image: string, size: number): Promise<void> {
    if (this.#options.preallocate) {
      await runCommand('fallocate', ['--length', String(size), image], { timeoutMs: this.#options.commandTimeoutMs, errorCode: outOfSpaceOr('INTERNAL'), context: `cannot reserve ${size} bytes for ${image}` });
    } else {
      await truncate(image, size).catch((error: unknown) => {
        throw toWsdError(error, errnoCode(error) === 'EFBIG' ? 'RESOURCE_EXHAUSTED' : 'INTERNAL', `cannot grow the loop image ${image}`);
      });
    }
  }

  /** The loop device of `image` mounted at `dir`, if any. */
  async #mountedDevice(image: string, dir: string): Promise<LoopDevice | undefined> {
    const devices = await this.#devicesOf(image);
    const real = await realpath(dir).catch(() => dir);
    const mounts = await readMountTable();
    return devices.find((d) => mounts.some((m) => m.device === d.device && m.mountPoint === real));
  }

  /** After a restart: mounts the image again where a reboot (or a crash between steps) left it unmounted. */
  async #reattach(handle: QuotaHandle, data: LoopHandleData): Promise<void> {
    const dir = path.resolve(handle.dir);
    const log = this.#log.child({ workspaceId: handle.workspaceId });
    if (!(await exists(data.image))) {
      // An interrupted release, or an operator: nothing to mount; release later removes the folder.
      log.warn('the loop image of this workspace is gone; nothing to mount', { image: data.image, dir });
      return;
    }
    if (await this.#mountedDevice(data.image, dir)) return; // the daemon restarted, the host did not
    const fs = loopFileSystems[data.fsType];
    await this.#serialized(async () => {
      // Attached but not mounted here (a crash between the two, or mounted elsewhere by hand): start from scratch.
      const ids = new Set((await this.#devicesOf(data.image)).map((d) => d.device));
      const strays = (await readMountTable()).filter((m) => ids.has(m.device));
      if (strays.length > 0) {
        throw new WsdError('FAILED_PRECONDITION', `its image ${data.image} is mounted at ${strays.map((m) => m.mountPoint).join(', ')}, not at ${dir}; unmount it there`);
      }
      await this.#detach(data.image);
    });
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const content = await readdir(dir);
    if (content.length > 0) {
      throw new WsdError('FAILED_PRECONDITION', `its folder ${dir} holds files (${content.slice(0, 3).join(', ')}${content.length > 3 ? ', ...' : ''}) while its image is not mounted: mounting would hide them; move them away`);
    }
    await fs.repair?.(data.image, this.#commandBase());
    await this.#mount(data.image, dir, fs.type);
    log.info('loop file system mounted again', { image: data.image, dir });
  }

  /**
   * At start: what no handle names — images in the images folder, loop devices backed by a file there (also a
   * deleted one), and their mounts — is what an interrupted provision left (a crash before core persisted the
   * handle). Each is unmounted, detached and deleted, and logged; an empty mount point left by it is removed too.
   * A failure is logged and the sweep goes on: a leftover must not keep the node from starting.
   */
  async #sweepLeftovers(named: Set<string>): Promise<void> {
    const imagesDir = this.#options.imagesDir;
    const inImages = (file: string) => path.dirname(file) === imagesDir;
    const images = new Set<string>();
    for (const name of await readdir(imagesDir).catch(() => [] as string[])) {
      if (name.endsWith('.img')) images.add(path.join(imagesDir, name));
    }
    for (const device of await attachedLoopDevices()) if (inImages(device.backingFile)) images.add(device.backingFile);
    for (const image of images) {
      if (named.has(image)) continue;
      try {
        const devices = await this.#devicesOf(image);
        const ids = new Set(devices.map((d) => d.device));
        const mountPoints = (await readMountTable()).filter((m) => ids.has(m.device)).map((m) => m.mountPoint);
        await this.#unmountAndDetach(image);
        for (const point of mountPoints) await rmdir(point).catch(() => {}); // only if empty: it may not be ours
        await rm(image, { force: true });
        this.#log.warn('removed a loop image no workspace names (left by an interrupted provision)', {
          image,
          ...(devices.length ? { loopDevices: devices.map((d) => d.path) } : {}),
          ...(mountPoints.length ? { unmounted: mountPoints } : {}),
        });
      } catch (error) {
        this.#log.error('cannot remove a loop image no workspace names; it stays until the next start', { image, error: error as Error });
      }
    }
  }
}

/** Maps ENOSPC-looking command failures (mkfs or fallocate on a full disk) to RESOURCE_EXHAUSTED. */
function outOfSpaceOr(fallback: 'INTERNAL'): RunCommandOptions['errorCode'] {
  return (failure) => (/no space left|ENOSPC|disk full/i.test(failure.stderr) ? 'RESOURCE_EXHAUSTED' : failure.reason === 'exit' ? fallback : undefined);
}

function assertLimit(limitBytes: number): void {
  if (!Number.isSafeInteger(limitBytes) || limitBytes < 0) {
    throw new WsdError('INVALID_ARGUMENT', `limitBytes must be a non-negative integer, got ${limitBytes}`, { field: 'limitBytes' });
  }
}

function throwIfCancelled(signal: AbortSignal | undefined, workspaceId: string): void {
  if (signal?.aborted) throw new WsdError('CANCELLED', `provisioning the loop file system of workspace ${workspaceId} was cancelled`);
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(() => true, () => false);
}

/** A folder is a mount point when it is on another device than its parent. */
async function isMountPoint(dir: string): Promise<boolean> {
  try {
    const [own, parent] = await Promise.all([stat(dir), stat(path.dirname(path.resolve(dir)))]);
    return own.dev !== parent.dev;
  } catch {
    return false;
  }
}
