import { randomBytes } from 'node:crypto';
import type { StorageBackend } from '../../storage/storage-backend.js';
import { packKey } from './repository-layout.js';
import type { ChunkEncoding } from './tree.js';

/** Where a chunk written by this backup went; `pack` is known once its pack is sealed. */
export interface NewChunk {
  id: string;
  pack: PendingPack;
  offset: number;
  stored: number;
  raw: number;
  encoding: ChunkEncoding;
}

export class PendingPack {
  id: string | undefined;
  readonly parts: Buffer[] = [];
  size = 0;
  readonly chunks: NewChunk[] = [];
}

/**
 * Collects new chunks into packs of about `targetBytes` and uploads each sealed pack under a random 256-bit id
 * (never reused: a pack is written once; every chunk in it is verified by its own sha256, so hashing the pack as well
 * would cost a pass over the data for nothing), at most `uploads` at once; `add` waits while that many are in
 * flight, so memory stays at about (uploads + 1) × targetBytes.
 */
export class PackWriter {
  readonly #storage: StorageBackend;
  readonly #owner: string;
  readonly #targetBytes: number;
  readonly #maxUploads: number;
  readonly #signal: AbortSignal | undefined;
  #current = new PendingPack();
  readonly #inFlight = new Set<Promise<void>>();
  #failure: unknown;
  /** Every pack sealed so far, in order. */
  readonly sealed: PendingPack[] = [];
  uploadedBytes = 0;

  readonly #onUploaded: ((bytes: number) => void) | undefined;

  /** `onUploaded` hears the bytes stored so far after each pack (for progress reports). */
  constructor(storage: StorageBackend, owner: string, options: { targetBytes?: number; uploads?: number; signal?: AbortSignal; onUploaded?: (bytes: number) => void } = {}) {
    this.#onUploaded = options.onUploaded;
    this.#storage = storage;
    this.#owner = owner;
    this.#targetBytes = options.targetBytes ?? 16 * 1024 * 1024;
    this.#maxUploads = options.uploads ?? 2;
    this.#signal = options.signal;
  }

  /** Appends a chunk's stored bytes to the current pack; seals and uploads it once it is full. */
  async add(id: string, stored: Buffer, raw: number, encoding: ChunkEncoding): Promise<NewChunk> {
    if (this.#failure) throw this.#failure;
    const pack = this.#current;
    const chunk: NewChunk = { id, pack, offset: pack.size, stored: stored.length, raw, encoding };
    pack.parts.push(stored);
    pack.size += stored.length;
    pack.chunks.push(chunk);
    if (pack.size >= this.#targetBytes) await this.#seal();
    return chunk;
  }

  /** Seals the last pack and waits for every upload; rejects with the first upload failure. */
  async finish(): Promise<void> {
    if (this.#current.size > 0) await this.#seal();
    await Promise.all(this.#inFlight);
    if (this.#failure) throw this.#failure;
  }

  async #seal(): Promise<void> {
    const pack = this.#current;
    this.#current = new PendingPack();
    const body = Buffer.concat(pack.parts);
    pack.parts.length = 0;
    pack.id = randomBytes(32).toString('hex');
    this.sealed.push(pack);
    while (this.#inFlight.size >= this.#maxUploads) await Promise.race(this.#inFlight);
    if (this.#failure) throw this.#failure;
    const upload = this.#storage
      .put({ key: packKey(this.#owner, pack.id), body, sizeHint: body.length, contentType: 'application/octet-stream', ...(this.#signal ? { signal: this.#signal } : {}) })
      .then(
        () => {
          this.uploadedBytes += body.length;
          this.#onUploaded?.(this.uploadedBytes);
        },
        (error: unknown) => {
          this.#failure ??= error;
        },
      )
      .finally(() => this.#inFlight.delete(upload));
    this.#inFlight.add(upload);
  }
}
