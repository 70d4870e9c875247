import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { errnoCode } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { WorkspaceRecord } from './workspace-record.js';

const suffix = '.workspace.json';

/**
 * Persists workspace records as `<id>.workspace.json` in the working area. Every save is a temp file, fsync,
 * rename, fsync of the folder: after a crash the file holds the old or the new record, never a torn one.
 * Files are 0600: they describe users' workspaces (credentials in initializer specs are redacted before saving).
 */
export class SessionStore {
  readonly #dir: string;
  readonly #log: Logger;

  constructor(workingArea: string, log: Logger) {
    this.#dir = workingArea;
    this.#log = log;
  }

  fileFor(id: string): string {
    return path.join(this.#dir, `${id}${suffix}`);
  }

  async save(record: WorkspaceRecord): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    const target = this.fileFor(record.id);
    const tmp = `${target}.tmp-${randomBytes(4).toString('hex')}`;
    const handle = await open(tmp, 'wx', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(record, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(tmp, target);
    } catch (error) {
      await unlink(tmp).catch(() => {});
      throw error;
    }
    await this.#syncDir();
  }

  async delete(id: string): Promise<void> {
    try {
      await unlink(this.fileFor(id));
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
    }
    await this.#syncDir();
  }

  /** Every readable record; unreadable files are logged and left in place for an operator. */
  async loadAll(): Promise<WorkspaceRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return [];
      throw error;
    }
    const records: WorkspaceRecord[] = [];
    for (const name of names.filter((n) => n.endsWith(suffix))) {
      const file = path.join(this.#dir, name);
      try {
        const record = JSON.parse(await readFile(file, 'utf8')) as WorkspaceRecord;
        if (record.version !== 1 || `${record.id}${suffix}` !== name) throw new Error('not a wsd workspace record');
        records.push(record);
      } catch (error) {
        this.#log.error('unreadable workspace state file left in place', { file, error: error as Error });
      }
    }
    // Temp files of saves interrupted by a crash.
    for (const name of names.filter((n) => n.includes(`${suffix}.tmp-`))) {
      await unlink(path.join(this.#dir, name)).catch(() => {});
    }
    return records;
  }

  async #syncDir(): Promise<void> {
    const handle = await open(this.#dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
