import { statfs } from 'node:fs/promises';
import { Counter, Gauge, type Registry } from 'prom-client';
import { WsdError } from '../errors.js';
import type { Logger } from '../observability/logger.js';

/** One reading of the working area's free space. */
export interface DiskSample {
  /** Bytes available to unprivileged writers (`bavail`): what workspaces can use. */
  freeBytes: number;
  /** Below the guard's threshold (never, when the guard is off). */
  low: boolean;
}

/**
 * The node disk guard: below `minFreeBytes` free on the working area's file system, no new workspace lands here
 * (InitWorkspace is refused with `RESOURCE_EXHAUSTED`). It recovers by itself: every init reads the free space
 * afresh. Plugins see it through `diskGuardToken` (the `disk-space` health check takes its threshold from it).
 */
export interface DiskGuard {
  /** The folder whose file system is watched (the working area). */
  readonly dir: string;
  /** Free bytes below which inits are refused; 0 = the guard is off. */
  readonly minFreeBytes: number;
  /** The setting that holds the threshold, for messages (`workspaces.minFree`). */
  readonly setting: string;
  /** Reads the free space now (one statfs) and reports a crossing of the threshold, either way, in the log. */
  sample(): Promise<DiskSample>;
  /** Resolves when there is room for a new workspace; `RESOURCE_EXHAUSTED` naming free and required bytes otherwise. */
  assertRoom(): Promise<void>;
}

export interface WorkingAreaDiskGuardOptions {
  dir: string;
  minFreeBytes: number;
  setting?: string;
  log: Logger;
  metrics?: Registry;
}

/** {@link DiskGuard} over statfs of the working area, with its gauge, its refusal counter and its crossing events. */
export class WorkingAreaDiskGuard implements DiskGuard {
  readonly dir: string;
  readonly minFreeBytes: number;
  readonly setting: string;
  readonly #log: Logger;
  readonly #refusals: Counter | undefined;
  /** Whether the last reading was below the threshold; unknown before the first. */
  #low: boolean | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: WorkingAreaDiskGuardOptions) {
    this.dir = options.dir;
    this.minFreeBytes = options.minFreeBytes;
    this.setting = options.setting ?? 'workspaces.minFree';
    this.#log = options.log;
    if (options.metrics) {
      const guard = this;
      new Gauge({
        name: 'wsd_working_area_min_free_bytes',
        help: 'Free bytes on the working area below which InitWorkspace is refused (0: the disk guard is off)',
        registers: [options.metrics],
      }).set(this.minFreeBytes);
      new Gauge({
        name: 'wsd_working_area_low',
        help: '1 while free space on the working area is below wsd_working_area_min_free_bytes (new workspaces refused), else 0',
        registers: [options.metrics],
        async collect() {
          const sample = await guard.sample().catch(() => undefined);
          if (sample) this.set(sample.low ? 1 : 0);
        },
      });
      this.#refusals = new Counter({
        name: 'wsd_disk_guard_refusals_total',
        help: 'InitWorkspace calls refused because the working area had less free space than the disk guard requires',
        registers: [options.metrics],
      });
    }
  }

  async sample(): Promise<DiskSample> {
    const fs = await statfs(this.dir);
    const freeBytes = fs.bavail * fs.bsize;
    const low = this.minFreeBytes > 0 && freeBytes < this.minFreeBytes;
    const fields = { dir: this.dir, freeBytes, minFreeBytes: this.minFreeBytes, setting: this.setting };
    if (low && this.#low !== true) {
      this.#log.warn(`working area free space is below ${this.setting}: new workspaces are refused until space is freed`, fields);
    } else if (!low && this.#low === true) {
      this.#log.info(`working area free space is back above ${this.setting}: new workspaces are accepted again`, fields);
    }
    this.#low = low;
    return { freeBytes, low };
  }

  async assertRoom(): Promise<void> {
    if (this.minFreeBytes === 0) return;
    const { freeBytes, low } = await this.sample().catch((error: unknown) => {
      throw new WsdError('UNAVAILABLE', `cannot read the free space of the working area ${this.dir}: ${(error as Error).message}`);
    });
    if (!low) return;
    this.#refusals?.inc();
    throw new WsdError(
      'RESOURCE_EXHAUSTED',
      `the working area ${this.dir} has ${freeBytes} bytes (${formatBytes(freeBytes)}) free; new workspaces need at least ${this.minFreeBytes} bytes (${formatBytes(this.minFreeBytes)}, ${this.setting})`,
      { field: this.setting },
    );
  }

  /**
   * Samples every `intervalMs`, so a crossing is logged when it happens, not only at the next init. The timer does
   * not keep the process alive. Call {@link stop} at shutdown.
   */
  start(intervalMs: number): void {
    if (this.minFreeBytes === 0 || this.#timer) return;
    void this.sample().catch(() => {});
    this.#timer = setInterval(() => void this.sample().catch(() => {}), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** `12.3 GiB`: sizes in messages for people, next to the exact byte count. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
