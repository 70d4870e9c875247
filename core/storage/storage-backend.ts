import type { Readable } from 'node:stream';
import { WsdError } from '../errors.js';
import { createToken } from '../kernel/token.js';

/**
 * StorageBackend — an object store addressed by keys. The one place wsd keeps backups and snapshots.
 *
 * Glossary
 * - **key**: `/`-separated segments, e.g. `alice/workspaces/ws-1/backups/20261128T041800Z-3f2a.tar.zst`. Keys are
 *   opaque to the backend except for the rules in {@link assertValidKey} (checked by every backend). A key and a key
 *   "below" it (`a` and `a/b`) may both exist.
 * - **object**: the bytes stored under a key, plus its size and modification time.
 *
 * Contract every backend keeps (checked by `test/conformance/storage-backend.ts`):
 * - `put` is all-or-nothing: readers see the old object or the complete new one, never a partial one; a failed or
 *   cancelled put leaves the old object in place.
 * - A successful `put` is durable when it returns (the data survives a daemon crash right after).
 * - `NOT_FOUND` is the only code for a missing key; `delete` of a missing key succeeds.
 * - Every method honours `signal`: on abort it stops work and rejects with `CANCELLED`.
 * - Every failure is a `WsdError`: `INVALID_ARGUMENT` (bad key or range), `NOT_FOUND`, `PERMISSION_DENIED`
 *   (credentials refused), `UNAVAILABLE` (transient; the backend already retried with backoff), `INTERNAL`.
 *   SDK errors never escape.
 *
 * Cost: `head` and `delete` are one round trip; `list` is one round trip per page (~1000 keys); `put`/`get` stream
 * and never buffer a whole object in memory.
 */
export interface StorageBackend {
  readonly capabilities: StorageCapabilities;

  /**
   * Streams `body` to `key`, replacing any object there. The length of a stream need not be known in advance.
   * With `ifNoneMatch: true` (requires `capabilities.conditionalCreate`) the put fails with `ALREADY_EXISTS` when
   * the key exists, atomically with respect to other puts.
   */
  put(options: PutOptions): Promise<PutResult>;

  /**
   * Opens the object for reading. `range` selects bytes `[offset, offset + length)`; a range that starts past the
   * end is `INVALID_ARGUMENT`, one that ends past the end is cut at the end (as HTTP ranges are).
   * The returned stream errors with a `WsdError` if the transfer fails midway.
   */
  get(options: GetOptions): Promise<GetResult>;

  /** Metadata of one object, or `NOT_FOUND`. */
  head(options: KeyOptions): Promise<ObjectInfo>;

  /**
   * Every object whose key starts with `prefix` (a plain string prefix, not a folder: `a/b` matches `a/bc`),
   * in ascending order of the keys' UTF-8 bytes. An empty prefix lists everything.
   */
  list(options: ListOptions): AsyncIterable<ObjectInfo>;

  /** Removes the object. Idempotent: deleting a missing key succeeds. */
  delete(options: KeyOptions): Promise<void>;

  /**
   * A URL that lets an HTTP client GET the object without credentials until `expiresInSeconds` pass.
   * Present only when `capabilities.presign` is true.
   */
  presignGet?(options: KeyOptions & { expiresInSeconds: number }): Promise<string>;

  /** Server-side copy of `from` to `to`. Present only when `capabilities.serverSideCopy` is true. */
  copy?(options: { from: string; to: string; signal?: AbortSignal }): Promise<void>;
}

export interface StorageCapabilities {
  /** `presignGet` exists and returns URLs an HTTP client can use. */
  readonly presign: boolean;
  /** `put` honours `ifNoneMatch`. */
  readonly conditionalCreate: boolean;
  /** `copy` exists and does not stream the object through wsd. */
  readonly serverSideCopy: boolean;
}

export interface KeyOptions {
  key: string;
  signal?: AbortSignal;
}

export interface PutOptions extends KeyOptions {
  body: Readable | Uint8Array;
  /** Fail with ALREADY_EXISTS instead of replacing an existing object (see `capabilities.conditionalCreate`). */
  ifNoneMatch?: boolean;
  contentType?: string;
}

export interface PutResult {
  /** Bytes stored. */
  size: number;
}

export interface GetOptions extends KeyOptions {
  range?: { offset: number; length?: number };
}

export interface GetResult {
  body: Readable;
  /** Size of the whole object (not of the range). */
  size: number;
  /** Bytes the body will yield. */
  contentLength: number;
}

export interface ListOptions {
  prefix: string;
  signal?: AbortSignal;
}

export interface ObjectInfo {
  key: string;
  size: number;
  modifiedAt: Date;
}

export const storageBackendToken = createToken<StorageBackend>('wsd.storage.v1');

/** Longest key in UTF-8 bytes; S3, GCS and Azure all allow at least this. */
export const maxKeyBytes = 1024;

/**
 * Throws `INVALID_ARGUMENT` unless `key` is a key every backend can store: non-empty, at most {@link maxKeyBytes}
 * UTF-8 bytes, no leading or trailing `/`, no empty, `.` or `..` segments, no control characters, valid Unicode.
 */
export function assertValidKey(key: string, field = 'key'): void {
  const reason = invalidKeyReason(key);
  if (reason) throw new WsdError('INVALID_ARGUMENT', `${field} ${JSON.stringify(key)}: ${reason}`, { field });
}

function invalidKeyReason(key: string): string | undefined {
  if (typeof key !== 'string' || key.length === 0) return 'must be a non-empty string';
  if (Buffer.byteLength(key, 'utf8') > maxKeyBytes) return `must be at most ${maxKeyBytes} UTF-8 bytes`;
  if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(key)) return 'must be valid Unicode';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) return 'must not contain control characters';
  for (const segment of key.split('/')) {
    if (segment === '') return 'must not start or end with "/" or contain "//"';
    if (segment === '.' || segment === '..') return 'must not contain "." or ".." segments';
  }
  return undefined;
}

