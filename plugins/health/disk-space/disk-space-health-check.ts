import { statfs } from 'node:fs/promises';
import { formatBytes, type HealthCheck, type HealthResult } from '../../../core/plugin-api.js';

export interface DiskSpaceOptions {
  dir: string;
  /** Below this many free bytes the node is `failing` (not ready: no new workspaces). */
  failBelowBytes: number;
  /** Below this many free bytes the node is `degraded` (reported, still ready). */
  warnBelowBytes: number;
  critical: boolean;
}

/**
 * Free space on the working area's filesystem, as available to unprivileged writers (`bavail`) — what workspaces
 * can actually use. (The seed daemon's version multiplied by 2^30 twice and almost always passed.)
 */
export class DiskSpaceHealthCheck implements HealthCheck {
  readonly name = 'disk-space';
  readonly critical: boolean;
  readonly #options: DiskSpaceOptions;

  constructor(options: DiskSpaceOptions) {
    this.#options = options;
    this.critical = options.critical;
  }

  async check(): Promise<HealthResult> {
    const fs = await statfs(this.#options.dir);
    const free = fs.bavail * fs.bsize;
    const describe = (limit: number) => `${formatBytes(free)} free on ${this.#options.dir}, below ${formatBytes(limit)}`;
    if (free < this.#options.failBelowBytes) return { status: 'failing', reason: describe(this.#options.failBelowBytes) };
    if (free < this.#options.warnBelowBytes) return { status: 'degraded', reason: describe(this.#options.warnBelowBytes) };
    return { status: 'ok' };
  }
}
