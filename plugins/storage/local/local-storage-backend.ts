import { mkdir, open, link, lstat, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import { Readable, addAbortSignal } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  WsdError,
  errnoCode,
  isAbortError,
  isWsdError,
  makeFolders,
  assertValidKey,
  assertValidPutOptions,
  compareKeys,
  type GetOptions,
  type GetResult,
  type KeyOptions,
  type ListOptions,
  type ObjectInfo,
  type PutOptions,
  type PutResult,
  type StorageBackend,
  type StorageCapabilities,
} from '../../../core/plugin-api.js';

/**
 * Keeps objects as files under a root folder.
 *
 * Layout: key `a/b/c` is the file `<root>/a~/b~/c`. Folders carry a trailing `~` (and `~` and `%` inside segments
 * are percent-encoded) so that an object `a` and an object `a/b` can both exist, as in any object store.
 * A put writes `.~tmp-*` in the target folder, fsyncs it and renames it into place, so readers never see a partial
 * object and a crash leaves at worst a stray temp file, never a torn object.
 *
 * Etags are derived from the file, not stored beside it: `<inode>-<mtime in ns>-<size>` (see {@link etagOf}). Every
 * put writes a new inode and stamps it with a fresh, per-process strictly increasing microsecond mtime, so the etag
 * changes on every put, identical bytes included; a file placed by other means (a restored copy of the root) still
 * has one. The commit step of every put and delete (check the condition, rename/link/unlink, fsync the folder) runs
 * under a per-key lock file created with O_EXCL, so conditional puts are atomic against other processes and nodes
 * sharing the root (ADR 0005). The body is written before the lock is taken: the lock is held for milliseconds.
 */
const staleTempAgeMs = 24 * 3600 * 1000;
/**
 * A lock file older than this is abandoned (its holder crashed inside the few-millisecond commit step) and is broken.
 * Generous, because nodes sharing a root over NFS compare their clocks with the server's.
 */
const staleLockMs = 30_000;

export class LocalStorageBackend implements StorageBackend {
  readonly capabilities: StorageCapabilities = { presign: false, conditionalCreate: true, conditionalReplace: true, serverSideCopy: false };
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  /** Creates the root and, in the background, deletes temp files of puts a crash interrupted (older than a day). */
  async start(): Promise<void> {
    await makeFolders(this.root);
    this.#collected = this.collectTempFiles(Date.now() - staleTempAgeMs).catch(() => 0);
  }

  #collected: Promise<number> = Promise.resolve(0);

  /** Resolves once the start-up collection of stale temp files is over, with how many it deleted (tests). */
  get tempFilesCollected(): Promise<number> {
    return this.#collected;
  }

  /**
   * Deletes `.~tmp-*` files last modified before `olderThan` (ms since the epoch): what puts interrupted by a crash
   * left. A day's margin keeps a put in progress on a shared root safe. Lock files a crash abandoned that long ago
   * go too (a put of their key would break them anyway; this keeps their folders prunable). Returns how many temp
   * files were deleted.
   */
  async collectTempFiles(olderThan: number): Promise<number> {
    let deleted = 0;
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) await walk(full);
        else if (entry.isFile() && entry.name.startsWith('.~tmp-')) {
          const info = await stat(full).catch(() => undefined);
          if (info && info.mtimeMs < olderThan && (await unlink(full).then(() => true, () => false))) deleted++;
        } else if (entry.isFile() && entry.name.startsWith(lockPrefix)) {
          const info = await stat(full).catch(() => undefined);
          if (info && info.mtimeMs < olderThan) await unlink(full).catch(() => {});
        }
      }
    };
    await walk(this.root);
    return deleted;
  }

  async put({ key, body, ifNoneMatch, ifMatch, sizeHint, signal }: PutOptions): Promise<PutResult> {
    const file = this.#fileFor(key);
    assertValidPutOptions({ ifNoneMatch, ifMatch, sizeHint }, this.capabilities);
    signal?.throwIfAborted();
    const dir = path.dirname(file);
    const tmp = path.join(dir, `.~tmp-${randomBytes(8).toString('hex')}`);
    const handle = await this.#openTemp(dir, tmp, key);
    let size = 0;
    try {
      const source = body instanceof Uint8Array ? [body] : body;
      // A plain loop rather than pipeline(): it keeps the FileHandle open for the fsync below, and leaving the
      // loop (error or abort) destroys the source stream. Chunks are gathered into ~1 MiB writev calls: one
      // thread-pool round trip per 64 KiB chunk halves throughput.
      let batch: Uint8Array[] = [];
      let batched = 0;
      const flush = async () => {
        for (let written = 0; written < batched; ) {
          const { bytesWritten } = await handle.writev(written === 0 ? batch : [Buffer.concat(batch).subarray(written)]);
          written += bytesWritten;
        }
        size += batched;
        batch = [];
        batched = 0;
      };
      for await (const chunk of source as AsyncIterable<Uint8Array | string>) {
        signal?.throwIfAborted();
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        batch.push(buf);
        batched += buf.length;
        if (batched >= 1024 * 1024) await flush();
      }
      await flush();
      signal?.throwIfAborted();
      // The stamp makes the etag change on every put (see etagOf); set before the fsync so it is durable with the data.
      const stamp = nextStamp();
      await handle.utimes(stamp, stamp);
      await handle.sync();
      const etag = etagOf(await handle.stat({ bigint: true }));
      await handle.close();
      await this.#locked(dir, file, key, signal, async () => {
        if (ifNoneMatch) {
          // link() fails if the target exists, atomically, even against a writer that takes no lock (an older wsd).
          await link(tmp, file).catch((error: unknown) => {
            if (errnoCode(error) === 'EEXIST') throw new WsdError('ALREADY_EXISTS', `object ${key} exists already`);
            throw error;
          });
          await unlink(tmp);
        } else {
          if (ifMatch !== undefined) {
            const current = await stat(file, { bigint: true }).catch((error: unknown) => {
              if (errnoCode(error) === 'ENOENT') return undefined;
              throw error;
            });
            if (current === undefined || etagOf(current) !== ifMatch) {
              throw new WsdError('FAILED_PRECONDITION', `object ${key} ${current ? 'has another etag' : 'does not exist'} (ifMatch ${ifMatch})`);
            }
          }
          await rename(tmp, file);
        }
        await syncDir(dir);
      });
      return { size, etag };
    } catch (error) {
      await handle.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw mapError(error, `put ${key}`);
    }
  }

  async get({ key, range, signal }: GetOptions): Promise<GetResult> {
    const file = this.#fileFor(key);
    signal?.throwIfAborted();
    try {
      const handle = await open(file, 'r');
      try {
        const info = await handle.stat({ bigint: true });
        const size = Number(info.size);
        const offset = range?.offset ?? 0;
        if (!Number.isSafeInteger(offset) || offset < 0 || (offset > 0 && offset >= size)) {
          throw new WsdError('INVALID_ARGUMENT', `range offset ${offset} is outside object ${key} of ${size} bytes`, { field: 'range.offset' });
        }
        if (range?.length !== undefined && (!Number.isSafeInteger(range.length) || range.length < 0)) {
          throw new WsdError('INVALID_ARGUMENT', `range length ${range.length} must be a non-negative integer`, { field: 'range.length' });
        }
        const end = Math.min(size, range?.length === undefined ? size : offset + range.length);
        const contentLength = end - offset;
        // createReadStream's `end` is inclusive; an empty read still needs a stream that ends at once.
        const body =
          contentLength === 0
            ? (await handle.close(), Readable.from([]))
            : handle.createReadStream({ start: offset, end: end - 1 });
        // The open handle pins this inode: the body is the version the etag names even if a put replaces the key.
        return { body: signal ? addAbortSignal(signal, body) : body, size, contentLength, etag: etagOf(info) };
      } catch (error) {
        await handle.close().catch(() => {});
        throw error;
      }
    } catch (error) {
      throw mapError(error, `get ${key}`);
    }
  }

  async head({ key, signal }: KeyOptions): Promise<ObjectInfo> {
    const file = this.#fileFor(key);
    signal?.throwIfAborted();
    try {
      return infoOf(key, await stat(file, { bigint: true }));
    } catch (error) {
      throw mapError(error, `head ${key}`);
    }
  }

  async *list({ prefix, signal }: ListOptions): AsyncIterable<ObjectInfo> {
    // Start in the deepest folder the prefix determines, then filter by the full key.
    const fixed = prefix.split('/').slice(0, -1);
    const startDir = path.join(this.root, ...fixed.map((s) => encodeSegment(s) + dirSuffix));
    const found: ObjectInfo[] = [];
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      signal?.throwIfAborted();
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (error) {
        if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return;
        throw mapError(error, `list ${prefix}`);
      }
      for (const entry of entries) {
        if (entry.isDirectory() && entry.name.endsWith(dirSuffix)) {
          const sub = `${keyPrefix}${decodeSegment(entry.name.slice(0, -dirSuffix.length))}/`;
          if (sub.startsWith(prefix) || prefix.startsWith(sub)) await walk(path.join(dir, entry.name), sub);
        } else if (entry.isFile() && !entry.name.includes(dirSuffix)) {
          const key = keyPrefix + decodeSegment(entry.name);
          if (!key.startsWith(prefix)) continue;
          try {
            found.push(infoOf(key, await stat(path.join(dir, entry.name), { bigint: true })));
          } catch (error) {
            if (errnoCode(error) !== 'ENOENT') throw mapError(error, `list ${prefix}`); // deleted meanwhile
          }
        }
      }
    };
    await walk(startDir, fixed.map((s) => `${s}/`).join(''));
    found.sort((a, b) => compareKeys(a.key, b.key));
    yield* found;
  }

  async delete({ key, signal }: KeyOptions): Promise<void> {
    const file = this.#fileFor(key);
    signal?.throwIfAborted();
    try {
      // Missing already: done, without creating a folder for the lock.
      if (!(await lstat(file).then(() => true, (error: unknown) => (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR' ? false : Promise.reject(error))))) return;
      // Under the key's lock, so that a conditional put never checks one version and then overwrites a deletion.
      const removed = await this.#locked(path.dirname(file), file, key, signal, async () => {
        try {
          await unlink(file);
          return true;
        } catch (error) {
          if (errnoCode(error) === 'ENOENT') return false;
          throw error;
        }
      }, { createFolder: false });
      if (!removed) return;
    } catch (error) {
      throw mapError(error, `delete ${key}`);
    }
    // Prune folders left empty, so deleted workspaces leave no trace; a concurrent put retries if it loses a folder.
    for (let dir = path.dirname(file); dir !== this.root && dir.startsWith(this.root); dir = path.dirname(dir)) {
      try {
        await rmdir(dir);
      } catch {
        break;
      }
    }
  }

  /**
   * Runs `commit` holding the lock file of `file` (`<folder>/.~lock-<hash of the name>`, created with O_EXCL, which
   * is atomic on local file systems and NFSv3+). Waiters poll with a short backoff; a lock older than
   * {@link staleLockMs} is broken. `createFolder: false` (delete): a folder that vanished means the object did too,
   * and `commit` is not run (resolves `false`).
   */
  async #locked<T>(dir: string, file: string, key: string, signal: AbortSignal | undefined, commit: () => Promise<T>, options: { createFolder?: boolean } = {}): Promise<T | false> {
    const lock = path.join(dir, `${lockPrefix}${createHash('sha256').update(path.basename(file)).digest('hex').slice(0, 32)}`);
    let ino: bigint | undefined;
    for (let attempt = 0; ino === undefined; attempt++) {
      signal?.throwIfAborted();
      try {
        const handle = await open(lock, 'wx', 0o644);
        try {
          await handle.writeFile(`${JSON.stringify({ host: hostname(), pid: process.pid, key, at: new Date().toISOString() })}\n`);
          ino = (await handle.stat({ bigint: true })).ino;
        } finally {
          await handle.close();
        }
      } catch (error) {
        const code = errnoCode(error);
        if (code === 'ENOENT') {
          // The folder was pruned by a delete: for a put, make it again; for a delete, the object is gone.
          if (options.createFolder === false) return false;
          await mkdir(dir, { recursive: true });
          continue;
        }
        if (code !== 'EEXIST') throw error;
        await breakIfStale(lock);
        // 1 ms, doubling to 64 ms, with jitter: commits take milliseconds.
        await sleep(Math.min(64, 2 ** Math.min(attempt, 6)) * (0.5 + Math.random()), undefined, signal ? { signal } : {});
      }
    }
    try {
      return await commit();
    } finally {
      // Only our own lock: if ours was broken as stale (a commit stuck for half a minute), another holder owns it now.
      const current = await stat(lock, { bigint: true }).catch(() => undefined);
      if (current?.ino === ino) await unlink(lock).catch(() => {});
    }
  }

  #fileFor(key: string): string {
    assertValidKey(key);
    const segments = key.split('/').map(encodeSegment);
    for (const segment of segments) {
      if (Buffer.byteLength(segment) + dirSuffix.length > 255) {
        throw new WsdError('INVALID_ARGUMENT', `key ${JSON.stringify(key)}: a segment is too long for local storage (254 bytes at most)`, { field: 'key' });
      }
    }
    const last = segments.pop()!;
    return path.join(this.root, ...segments.map((s) => s + dirSuffix), last);
  }

  async #openTemp(dir: string, tmp: string, key: string) {
    for (let attempt = 0; ; attempt++) {
      try {
        await mkdir(dir, { recursive: true });
        return await open(tmp, 'wx', 0o644);
      } catch (error) {
        // A concurrent delete may prune the folder between mkdir and open.
        if (errnoCode(error) === 'ENOENT' && attempt < 5) continue;
        throw mapError(error, `put ${key}`);
      }
    }
  }
}

const dirSuffix = '~';
/** Lock files are `.~lock-<32 hex>`: the `~` keeps them out of listings, as it does temp files. */
const lockPrefix = '.~lock-';

/**
 * An object's etag: inode, mtime in nanoseconds and size, from one stat. Every put writes a new inode and stamps it
 * with {@link nextStamp}; an inode number can be reused once the old file is replaced, but then the stamp differs.
 * Not stored anywhere, so it cannot disagree with the file. The device is left out: clients of one NFS export see
 * different device numbers.
 */
function etagOf(info: BigIntStats): string {
  return `${info.ino.toString(36)}-${info.mtimeNs.toString(36)}-${info.size.toString(36)}`;
}

function infoOf(key: string, info: BigIntStats): ObjectInfo {
  return { key, size: Number(info.size), modifiedAt: info.mtime, etag: etagOf(info) };
}

let lastStampMicros = 0;
/**
 * Wall-clock seconds with microsecond digits, strictly increasing within this process: the mtime every put gives
 * its file. Puts from other processes happen at other microseconds (a put that could reuse an inode runs after the
 * put that freed it has committed). A double holds microseconds of today's epoch seconds exactly enough (~0.24 µs).
 * File systems with coarser timestamps keep fewer digits; the etag is then only as fine as they are (README).
 */
function nextStamp(): number {
  const micros = Date.now() * 1000 + Number((process.hrtime.bigint() / 1000n) % 1000n);
  lastStampMicros = Math.max(micros, lastStampMicros + 1);
  return lastStampMicros / 1e6;
}

/**
 * Breaks a lock older than {@link staleLockMs}: moves it aside (only one breaker can move a given file), checks it is
 * still the stale one it saw (else it puts the fresh lock it took by mistake back), and deletes it.
 */
async function breakIfStale(lock: string): Promise<void> {
  const info = await stat(lock, { bigint: true }).catch(() => undefined);
  if (!info || Date.now() - Number(info.mtimeMs) < staleLockMs) return;
  const aside = `${path.dirname(lock)}/.~tmp-stale-lock-${randomBytes(6).toString('hex')}`;
  if (!(await rename(lock, aside).then(() => true, () => false))) return;
  const moved = await stat(aside, { bigint: true }).catch(() => undefined);
  if (moved && moved.ino !== info.ino) await link(aside, lock).catch(() => {});
  await unlink(aside).catch(() => {});
}

function encodeSegment(segment: string): string {
  return segment.replace(/[%~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function decodeSegment(name: string): string {
  return name.replace(/%(25|7E)/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function mapError(error: unknown, what: string): WsdError {
  if (isWsdError(error)) return error;
  if (isAbortError(error)) return new WsdError('CANCELLED', `${what}: cancelled`, { cause: error });
  const code = errnoCode(error);
  const message = `${what}: ${(error as Error)?.message ?? String(error)}`;
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new WsdError('NOT_FOUND', `${what}: no such object`, { cause: error });
    case 'ENOSPC':
    case 'EDQUOT':
      return new WsdError('RESOURCE_EXHAUSTED', message, { cause: error });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new WsdError('PERMISSION_DENIED', message, { cause: error });
    default:
      return new WsdError('INTERNAL', message, { cause: error });
  }
}
