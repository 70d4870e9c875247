import { mkdir, open, link, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Readable, addAbortSignal } from 'node:stream';
import { WsdError, errnoCode, isAbortError } from '../../../core/errors.js';
import { makeFolders } from '../../../core/fs/make-folders.js';
import {
  assertValidKey,
  type GetOptions,
  type GetResult,
  type KeyOptions,
  type ListOptions,
  type ObjectInfo,
  type PutOptions,
  type PutResult,
  type StorageBackend,
  type StorageCapabilities,
} from '../../../core/storage/storage-backend.js';

/**
 * Keeps objects as files under a root folder.
 *
 * Layout: key `a/b/c` is the file `<root>/a~/b~/c`. Folders carry a trailing `~` (and `~` and `%` inside segments
 * are percent-encoded) so that an object `a` and an object `a/b` can both exist, as in any object store.
 * A put writes `.~tmp-*` in the target folder, fsyncs it and renames it into place, so readers never see a partial
 * object and a crash leaves at worst a stray temp file, never a torn object.
 */
const staleTempAgeMs = 24 * 3600 * 1000;

export class LocalStorageBackend implements StorageBackend {
  readonly capabilities: StorageCapabilities = { presign: false, conditionalCreate: true, serverSideCopy: false };
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
   * left. A day's margin keeps a put in progress on a shared root safe. Returns how many were deleted.
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
        }
      }
    };
    await walk(this.root);
    return deleted;
  }

  async put({ key, body, ifNoneMatch, signal }: PutOptions): Promise<PutResult> {
    const file = this.#fileFor(key);
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
      await handle.sync();
      await handle.close();
      if (ifNoneMatch) {
        // link() fails if the target exists, atomically; rename() would silently replace it.
        await link(tmp, file).catch((error: unknown) => {
          if (errnoCode(error) === 'EEXIST') throw new WsdError('ALREADY_EXISTS', `object ${key} exists already`);
          throw error;
        });
        await unlink(tmp);
      } else {
        await rename(tmp, file);
      }
      await syncDir(dir);
      return { size };
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
        const { size } = await handle.stat();
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
        return { body: signal ? addAbortSignal(signal, body) : body, size, contentLength };
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
      const info = await stat(file);
      return { key, size: info.size, modifiedAt: info.mtime };
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
            const info = await stat(path.join(dir, entry.name));
            found.push({ key, size: info.size, modifiedAt: info.mtime });
          } catch (error) {
            if (errnoCode(error) !== 'ENOENT') throw mapError(error, `list ${prefix}`); // deleted meanwhile
          }
        }
      }
    };
    await walk(startDir, fixed.map((s) => `${s}/`).join(''));
    found.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
    yield* found;
  }

  async delete({ key, signal }: KeyOptions): Promise<void> {
    const file = this.#fileFor(key);
    signal?.throwIfAborted();
    try {
      await unlink(file);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return;
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
  if (error instanceof WsdError) return error;
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
