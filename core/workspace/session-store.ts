import { copyFile, lstat, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { errnoCode } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { isValidWorkspaceId, type WorkspaceRecord } from './workspace-record.js';
import { makeFolders } from '../fs/make-folders.js';

const suffix = '.json';
/** State files of wsd before 0.2 sat beside the workspace folders, in the ids' own namespace. */
const legacySuffix = '.workspace.json';

/** What a start finds on disk: the records, and the ids whose state file cannot be read. */
export interface LoadedState {
  records: WorkspaceRecord[];
  /** Ids whose state file exists but is unreadable: blocked until an operator repairs or removes the file. */
  unreadable: Array<{ id: string; file: string }>;
}

/**
 * Persists workspace records as `<stateDir>/<id>.json`, a folder of their own: no workspace id can name a state
 * file (ids name folders in the working area; an id like `v2.workspace.json` once named another workspace's state
 * file when both shared one folder). Temp files start with `.`, which no id does.
 *
 * Every save is a temp file, fsync, rename, fsync of the folder: after a crash the file holds the old or the new
 * record, never a torn one. Files are 0600: they describe users' workspaces (secrets are stripped before saving).
 */
export class SessionStore {
  readonly #dir: string;
  readonly #legacyDir: string | undefined;
  readonly #log: Logger;

  /** `legacyDir`: the working area, where older versions kept `<id>.workspace.json`; migrated by `loadAll`. */
  constructor(stateDir: string, log: Logger, options: { legacyDir?: string } = {}) {
    this.#dir = stateDir;
    this.#legacyDir = options.legacyDir;
    this.#log = log;
  }

  fileFor(id: string): string {
    return path.join(this.#dir, `${id}${suffix}`);
  }

  async save(record: WorkspaceRecord): Promise<void> {
    await makeFolders(this.#dir, 0o700);
    const target = this.fileFor(record.id);
    const tmp = path.join(this.#dir, `.${record.id}${suffix}.tmp-${randomBytes(4).toString('hex')}`);
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

  /**
   * Every record, after moving legacy state files into the state folder. Unreadable files are reported (and
   * logged), never deleted: their ids stay blocked until an operator acts.
   */
  async loadAll(): Promise<LoadedState> {
    await this.#migrate();
    const names = await readdir(this.#dir).catch((error: unknown) => {
      if (errnoCode(error) === 'ENOENT') return [] as string[];
      throw error;
    });
    const state: LoadedState = { records: [], unreadable: [] };
    for (const name of names) {
      const file = path.join(this.#dir, name);
      if (name.startsWith('.')) {
        // Temp files of saves interrupted by a crash.
        if (name.includes(`${suffix}.tmp-`)) await unlink(file).catch(() => {});
        continue;
      }
      if (!name.endsWith(suffix)) continue;
      const id = name.slice(0, -suffix.length);
      try {
        const record = JSON.parse(await readFile(file, 'utf8')) as WorkspaceRecord;
        if (record.version !== 1 || record.id !== id) throw new Error('not a wsd workspace record');
        state.records.push(record);
      } catch (error) {
        this.#log.error('unreadable workspace state file: its workspace is blocked until an operator repairs or removes the file', { file, error: error as Error });
        if (isValidWorkspaceId(id)) state.unreadable.push({ id, file });
      }
    }
    return state;
  }

  /** Moves `<legacyDir>/<id>.workspace.json` to `<stateDir>/<id>.json`, unless the new place holds one already. */
  async #migrate(): Promise<void> {
    if (!this.#legacyDir) return;
    const names = await readdir(this.#legacyDir).catch(() => [] as string[]);
    const legacy = names.filter((n) => n.endsWith(legacySuffix) && isValidWorkspaceId(n.slice(0, -legacySuffix.length)));
    if (legacy.length === 0) return;
    await makeFolders(this.#dir, 0o700);
    for (const name of legacy) {
      const from = path.join(this.#legacyDir, name);
      const info = await lstat(from).catch(() => undefined);
      if (!info?.isFile()) continue; // a folder of a workspace whose id ends in .workspace.json: content, not state
      const to = this.fileFor(name.slice(0, -legacySuffix.length));
      if (await lstat(to).catch(() => undefined)) {
        this.#log.warn('legacy state file left in place: the state folder has a newer one', { file: from });
        continue;
      }
      await rename(from, to).catch(async (error: unknown) => {
        if (errnoCode(error) !== 'EXDEV') throw error;
        await copyFile(from, to);
        await unlink(from);
      });
      this.#log.info('moved a state file into the state folder', { from, to });
    }
    await this.#syncDir();
  }

  async #syncDir(): Promise<void> {
    const handle = await open(this.#dir, 'r').catch((error: unknown) => {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw error;
    });
    if (!handle) return;
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
