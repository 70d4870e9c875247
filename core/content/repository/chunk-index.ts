import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { WsdError } from '../../errors.js';
import type { Logger } from '../../observability/logger.js';
import type { StorageBackend } from '../../storage/storage-backend.js';
import { mapLimit } from '../semaphore.js';
import { readBounded } from './read-bounded.js';
import { indexPrefix, timeNonce } from './repository-layout.js';
import { encodingCodes, encodings, isHexId, type ChunkEncoding, zstdBound } from './tree.js';
import { compressFrame, decompressFrame } from './zstd-frames.js';
import { maxChunkBytes } from './chunker.js';

export interface ChunkLocation {
  pack: string;
  offset: number;
  stored: number;
  raw: number;
  encoding: ChunkEncoding;
}

export interface IndexedPack {
  id: string;
  size: number;
  chunks: Array<{ id: string } & Omit<ChunkLocation, 'pack'>>;
}

/** Index objects list thousands of chunks; anything far larger is not one. */
const maxIndexJsonBytes = 64 * 1024 * 1024;

/**
 * What an owner's repository holds: chunk id → where it is stored, and the packs with their sizes. Built from the
 * owner's index objects; each object is immutable, so a node keeps the ones it has read in `cacheDir` and fetches
 * only new ones. Garbage collection removes a pack's entries (rewriting the index) before it deletes the pack, so a
 * chunk found here is in a pack that exists — as long as the reader holds a shared lock (repository-locks.ts).
 */
export class ChunkIndex {
  readonly chunks = new Map<string, ChunkLocation>();
  readonly packs = new Map<string, number>();
  /** The index objects this was built from. */
  readonly keys: string[] = [];
  /** Index objects that could not be read (skipped): what they name is unknown, so nothing may be collected. */
  unreadable = 0;

  /**
   * Forgets chunks whose pack is not in `packs` (id → size) or is shorter than the chunk's end: a stale entry
   * (an index object a collection could not rewrite) must make a backup store the chunk again, not reference a hole.
   */
  retainStored(packs: ReadonlyMap<string, number>): void {
    for (const [id, location] of this.chunks) {
      const size = packs.get(location.pack);
      if (size === undefined || size < location.offset + location.stored) this.chunks.delete(id);
    }
    for (const id of this.packs.keys()) if (!packs.has(id)) this.packs.delete(id);
  }

  add(pack: IndexedPack): void {
    this.packs.set(pack.id, pack.size);
    for (const c of pack.chunks) {
      if (!this.chunks.has(c.id)) this.chunks.set(c.id, { pack: pack.id, offset: c.offset, stored: c.stored, raw: c.raw, encoding: c.encoding });
    }
  }
}

export class ChunkIndexStore {
  readonly #storage: StorageBackend;
  readonly #log: Logger;
  readonly #cacheDir: string | undefined;
  readonly #hmacKey: Buffer | undefined;

  constructor(storage: StorageBackend, log: Logger, options: { cacheDir?: string; hmacKey?: Buffer } = {}) {
    this.#storage = storage;
    this.#log = log;
    this.#cacheDir = options.cacheDir;
    this.#hmacKey = options.hmacKey;
  }

  /** Reads every index object of `owner` (cached ones from disk). An object that does not validate is skipped, logged. */
  async load(owner: string, signal?: AbortSignal): Promise<ChunkIndex> {
    const index = new ChunkIndex();
    const keys: string[] = [];
    for await (const object of this.#storage.list({ prefix: indexPrefix(owner), ...(signal ? { signal } : {}) })) {
      if (object.key.endsWith('.json.zst')) keys.push(object.key);
    }
    let unreadable = 0;
    const loaded = await mapLimit(keys, 8, async (key) => {
      try {
        return await this.#read(key, signal);
      } catch (error) {
        if ((error as WsdError).code === 'NOT_FOUND') return undefined; // replaced by a garbage collection meanwhile
        this.#log.warn('skipping an index object that cannot be read; its chunks will not be deduplicated', { key, error: error as Error });
        unreadable++;
        return undefined;
      }
    });
    index.unreadable = unreadable;
    for (const [i, packs] of loaded.entries()) {
      if (!packs) continue;
      index.keys.push(keys[i]!);
      for (const pack of packs) index.add(pack);
    }
    return index;
  }

  /** Stores an index object listing `packs`; returns its key. */
  async write(owner: string, packs: IndexedPack[], signal?: AbortSignal): Promise<string> {
    const key = `${indexPrefix(owner)}${timeNonce(randomBytes(4).toString('hex'))}.json.zst`;
    const body = await compressFrame(Buffer.from(this.#encode(packs)), 3);
    await this.#storage.put({ key, body, contentType: 'application/zstd', ...(signal ? { signal } : {}) });
    await this.#cache(key, body);
    return key;
  }

  async #read(key: string, signal?: AbortSignal): Promise<IndexedPack[]> {
    const cached = await this.#cached(key);
    const body = cached ?? (await readBounded(this.#storage, key, zstdBound(maxIndexJsonBytes), signal));
    const packs = this.#decode((await decompressFrame(body, { max: maxIndexJsonBytes }, `index ${key}`)).toString('utf8'), key);
    if (!cached) await this.#cache(key, body);
    return packs;
  }

  #encode(packs: IndexedPack[]): string {
    const list = packs.map((p) => ({ id: p.id, size: p.size, chunks: p.chunks.map((c) => [c.id, c.offset, c.stored, c.raw, encodingCodes[c.encoding]]) }));
    const body = JSON.stringify(list);
    return JSON.stringify({ version: 1, packs: list, ...(this.#hmacKey ? { hmac: this.#hmac(body) } : {}) });
  }

  #decode(json: string, key: string): IndexedPack[] {
    const bad = (why: string) => new WsdError('DATA_LOSS', `index ${key} is refused: ${why}`);
    let doc: { version?: unknown; packs?: unknown; hmac?: unknown };
    try {
      doc = JSON.parse(json) as typeof doc;
    } catch (error) {
      throw new WsdError('DATA_LOSS', `index ${key} is not valid JSON`, { cause: error });
    }
    if (doc === null || typeof doc !== 'object' || doc.version !== 1 || !Array.isArray(doc.packs)) throw bad('not a wsd index (version 1)');
    if (this.#hmacKey) {
      const expected = Buffer.from(this.#hmac(JSON.stringify(doc.packs)));
      const got = Buffer.from(typeof doc.hmac === 'string' ? doc.hmac : '');
      if (got.length !== expected.length || !timingSafeEqual(got, expected)) throw bad('its hmac does not match');
    }
    return (doc.packs as unknown[]).map((value) => {
      const p = value as { id?: unknown; size?: unknown; chunks?: unknown };
      if (typeof p.id !== 'string' || !isHexId(p.id) || !Number.isSafeInteger(p.size) || !Array.isArray(p.chunks)) throw bad('malformed pack');
      const chunks = (p.chunks as unknown[]).map((c) => {
        const [id, offset, stored, raw, code] = c as unknown[];
        const encoding = encodings[code as number];
        if (typeof id !== 'string' || !isHexId(id) || encoding === undefined) throw bad('malformed chunk');
        for (const n of [offset, stored, raw]) if (!Number.isSafeInteger(n) || (n as number) < 0) throw bad('malformed chunk');
        if ((raw as number) === 0 || (raw as number) > maxChunkBytes || (offset as number) + (stored as number) > (p.size as number)) throw bad('a chunk out of bounds');
        return { id, offset: offset as number, stored: stored as number, raw: raw as number, encoding };
      });
      return { id: p.id, size: p.size as number, chunks };
    });
  }

  #hmac(body: string): string {
    return createHmac('sha256', this.#hmacKey!).update(body).digest('hex');
  }

  #cachePath(key: string): string | undefined {
    return this.#cacheDir ? path.join(this.#cacheDir, 'index', `${createHash('sha256').update(key).digest('hex')}.zst`) : undefined;
  }

  async #cached(key: string): Promise<Buffer | undefined> {
    const file = this.#cachePath(key);
    return file ? readFile(file).catch(() => undefined) : undefined;
  }

  async #cache(key: string, body: Buffer): Promise<void> {
    const file = this.#cachePath(key);
    if (!file) return;
    // Only a cache: a failure costs a download next time.
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
      .then(() => writeFile(`${file}.tmp`, body, { mode: 0o600 }))
      .then(() => rename(`${file}.tmp`, file))
      .catch(() => {});
  }
}
