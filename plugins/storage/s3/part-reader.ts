import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { maxPartSize } from './s3-config.js';

/** S3 allows at most this many parts in one upload. */
export const maxParts = 10_000;
const mib = 1024 * 1024;
/** Parts of an upload whose length nobody announced double in size every this many parts (see {@link partSizeFor}). */
const partsPerSize = 2_000;

/**
 * The size of part `partNumber` (1-based). With a `sizeHint`, parts are large enough that the hinted size fits in
 * 9 000 of them (room for a body somewhat longer than the hint). Without one, the configured size holds for the first
 * 2 000 parts and doubles every 2 000 parts after that: 16 MiB parts reach ~1 TB by part 10 000 while a typical
 * backup still uploads in 16 MiB parts (and memory stays partSize × concurrency until a body passes 32 GiB).
 */
export function partSizeFor(partNumber: number, configured: number, sizeHint: number | undefined): number {
  const base = sizeHint === undefined ? configured : Math.max(configured, Math.ceil(sizeHint / 9_000 / mib) * mib);
  return Math.min(maxPartSize, base * 2 ** Math.floor((partNumber - 1) / partsPerSize));
}

export interface Part {
  data: Buffer;
  /** No bytes follow this part. */
  last: boolean;
}

/**
 * Cuts a body of unknown length into parts of the sizes asked for: reads ahead until it holds more than a part
 * (or the body ends), so every part knows whether it is the last one. A body that fails rejects `next` with its
 * error; `close` ends reading early and destroys a stream body.
 */
export class PartReader {
  readonly #iterator: AsyncIterator<Uint8Array | string>;
  #held: Buffer[] = [];
  #heldBytes = 0;
  #ended = false;
  /** Bytes handed out in parts so far. */
  bytesRead = 0;

  constructor(body: Readable | Uint8Array) {
    this.#iterator =
      body instanceof Uint8Array
        ? toAsync([Buffer.from(body.buffer, body.byteOffset, body.byteLength)])
        : (body as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator]();
  }

  async next(size: number): Promise<Part> {
    while (!this.#ended && this.#heldBytes <= size) {
      const { value, done } = await this.#iterator.next();
      if (done) {
        this.#ended = true;
        break;
      }
      const chunk = typeof value === 'string' ? Buffer.from(value) : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      if (chunk.length === 0) continue;
      this.#held.push(chunk);
      this.#heldBytes += chunk.length;
    }
    const all = this.#held.length === 1 ? this.#held[0]! : Buffer.concat(this.#held, this.#heldBytes);
    const data = all.length <= size ? all : all.subarray(0, size);
    const rest = all.subarray(data.length);
    this.#held = rest.length > 0 ? [rest] : [];
    this.#heldBytes = rest.length;
    this.bytesRead += data.length;
    return { data, last: this.#ended && this.#heldBytes === 0 };
  }

  /** Stops reading; a stream body is destroyed (as a `for await` loop that is left early would). */
  async close(): Promise<void> {
    this.#held = [];
    this.#heldBytes = 0;
    if (!this.#ended) {
      this.#ended = true;
      await this.#iterator.return?.().catch(() => {});
    }
  }
}

async function* toAsync<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}

/** The hex MD5 of `data`: S3's ETag of an object stored with a single PUT (without SSE-KMS). */
export function md5Hex(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

/**
 * The ETag S3 gives the object a multipart upload completes into: the MD5 of the parts' MD5s, then `-<parts>`
 * (AWS without SSE-KMS, MinIO, Ceph). Undefined when a part's ETag is not a plain MD5: then nothing can be inferred.
 */
export function multipartEtag(partEtags: readonly string[]): string | undefined {
  if (!partEtags.every((etag) => /^[0-9a-f]{32}$/i.test(etag))) return undefined;
  const digest = createHash('md5');
  for (const etag of partEtags) digest.update(Buffer.from(etag, 'hex'));
  return `${digest.digest('hex')}-${partEtags.length}`;
}
