import { open, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { makeFolders, type HealthCheck, type HealthResult } from '../../../core/plugin-api.js';

/**
 * The working area exists, is a folder, and takes a small durable write. Catches a read-only remount, a full disk
 * (ENOSPC on the write) and a missing host mount.
 */
export class WorkingAreaHealthCheck implements HealthCheck {
  readonly name = 'working-area';
  readonly critical: boolean;
  readonly #dir: string;

  constructor(options: { dir: string; critical: boolean }) {
    this.#dir = options.dir;
    this.critical = options.critical;
  }

  /** The daemon owns the working area, so it creates it rather than failing on a fresh node. */
  async start(): Promise<void> {
    await makeFolders(this.#dir);
  }

  async check(signal: AbortSignal): Promise<HealthResult> {
    try {
      const info = await stat(this.#dir);
      if (!info.isDirectory()) return { status: 'failing', reason: `${this.#dir} is not a folder` };
      signal.throwIfAborted();
      const probe = path.join(this.#dir, `.health-${randomBytes(6).toString('hex')}`);
      const handle = await open(probe, 'wx');
      try {
        await handle.writeFile('ok');
        await handle.sync();
      } finally {
        await handle.close();
        await unlink(probe).catch(() => {});
      }
      return { status: 'ok' };
    } catch (error) {
      return { status: 'failing', reason: `working area ${this.#dir}: ${(error as Error).message}` };
    }
  }
}
