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
 * - **object**: the bytes stored under a key, plus its size, modification time and etag.
 * - **etag**: an opaque string naming one version of an object (S3 `ETag`, GCS `generation`, Azure `ETag`,
 *   `storage/local` a stat-derived tag). It changes whenever the object's bytes change; whether a put of *identical*
 *   bytes changes it is the backend's business (S3's single-part ETag is an MD5 and does not change; local, GCS and
 *   Azure do). Compare etags for equality only, never parse or order them, and never carry one from one key to
 *   another. Every put result, `head`, `get` result and `list` entry carries the etag of the version it describes.
 * - **conditional put**: `ifNoneMatch: true` (create only if the key is absent) or `ifMatch: etag` (replace only the
 *   version named by `etag`). The check and the write are one atomic step against every other put and delete of the
 *   key — from this process, another process, or another node sharing the store. This is what a compare-and-swap
 *   (read with etag → decide → put with `ifMatch`, re-read on `FAILED_PRECONDITION`) is built on; see ADR 0005.
 *
 * Contract every backend keeps (checked by `test/conformance/storage-backend.ts`):
 * - `put` is all-or-nothing: readers see the old object or the complete new one, never a partial one; a failed,
 *   refused (precondition) or cancelled put leaves the old object in place.
 * - A successful `put` is durable when it returns (the data survives a daemon crash right after), and a `head`/`get`
 *   that starts after it returns sees it (read-after-write; S3, GCS and Azure are strongly consistent).
 * - `NOT_FOUND` is the only code for a missing key; `delete` of a missing key succeeds.
 * - `list` returns keys in ascending order of their UTF-8 bytes (what S3 and GCS return; not JavaScript's default
 *   UTF-16 string order, which differs above U+FFFF — and which Azure returns: `storage/azure` re-orders).
 * - Every method honours `signal`: on abort it stops work and rejects with `CANCELLED`.
 * - Every failure is a `WsdError` of the closed set in `core/errors.ts`: `INVALID_ARGUMENT` (bad key, range, option
 *   or an option the backend does not support), `NOT_FOUND`, `ALREADY_EXISTS` and `FAILED_PRECONDITION` (the two
 *   conditional-put refusals), `PERMISSION_DENIED` (credentials refused), `RESOURCE_EXHAUSTED` (disk or account
 *   full), `UNAVAILABLE` (transient; the backend already retried with backoff), `CANCELLED`, `INTERNAL`.
 *   SDK errors never escape.
 *
 * Idempotency: `get`, `head`, `list` and `delete` may be retried freely. An unconditional `put` may be retried (the
 * same bytes end up there). A conditional put is *not* idempotent: a retry after a lost response may be refused
 * because the first attempt succeeded. So a backend either does not retry a conditional put whose request may have
 * reached the server, or resolves that ambiguity itself before it reports a refusal; and a caller that gets
 * `UNAVAILABLE` (or `CANCELLED`) from a conditional put does not know whether it happened and re-reads the object.
 *
 * Cost (cloud requests are billed): `head`, `delete` and a small `put` are one round trip; a conditional put is the
 * same request with a header (no extra round trip); `list` is one round trip per page (~1000 keys); `put`/`get`
 * stream and never buffer a whole object in memory. `storage/local` additionally takes a per-key lock file for every
 * put and delete (a few file-system calls).
 */
export interface StorageBackend {
  readonly capabilities: StorageCapabilities;

  /**
   * Streams `body` to `key`, replacing any object there, and returns the new object's size and etag. The length of
   * a stream need not be known in advance (`sizeHint` may say roughly how long it is).
   *
   * Conditions (at most one; both at once is `INVALID_ARGUMENT`):
   * - `ifNoneMatch: true` (requires `capabilities.conditionalCreate`): fails with `ALREADY_EXISTS` when the key
   *   exists.
   * - `ifMatch: etag` (requires `capabilities.conditionalReplace`): fails with `FAILED_PRECONDITION` unless the key
   *   exists with exactly this etag (a missing key is `FAILED_PRECONDITION` too).
   * A condition the backend does not declare is refused with `INVALID_ARGUMENT` (field `ifMatch`/`ifNoneMatch`),
   * never ignored: ignoring it would turn a compare-and-swap into a blind overwrite.
   *
   * Errors: `INVALID_ARGUMENT`, `ALREADY_EXISTS`, `FAILED_PRECONDITION`, `PERMISSION_DENIED`, `RESOURCE_EXHAUSTED`,
   * `UNAVAILABLE`, `CANCELLED`; a body stream that errors rejects the put (with that error wrapped) and stores nothing.
   */
  put(options: PutOptions): Promise<PutResult>;

  /**
   * Opens the object for reading. `range` selects bytes `[offset, offset + length)`; a range that starts past the
   * end is `INVALID_ARGUMENT`, one that ends past the end is cut at the end (as HTTP ranges are). Ranges are part of
   * the required contract: every object store serves them for free.
   * The returned stream yields the version named by the result's `etag` (never a mix of two versions), and errors
   * with a `WsdError` if the transfer fails midway. Errors: `NOT_FOUND`, `INVALID_ARGUMENT`, and the common ones.
   */
  get(options: GetOptions): Promise<GetResult>;

  /** Metadata of one object (size, modification time, etag), or `NOT_FOUND`. One round trip. */
  head(options: KeyOptions): Promise<ObjectInfo>;

  /**
   * Every object whose key starts with `prefix` (a plain string prefix, not a folder: `a/b` matches `a/bc`),
   * in ascending order of the keys' UTF-8 bytes, each with its etag. An empty prefix lists everything. Objects put
   * or deleted while a listing runs may or may not appear in it.
   */
  list(options: ListOptions): AsyncIterable<ObjectInfo>;

  /** Removes the object. Idempotent: deleting a missing key succeeds. Unconditional. */
  delete(options: KeyOptions): Promise<void>;

  /**
   * Optional (`capabilities.presign`): a URL that lets an HTTP client GET the object without credentials until
   * `expiresInSeconds` pass. Nothing in wsd requires it.
   */
  presignGet?(options: KeyOptions & { expiresInSeconds: number }): Promise<string>;

  /**
   * Optional (`capabilities.serverSideCopy`): copy of `from` to `to` without streaming the bytes through wsd. The
   * copy gets an etag of its own. `NOT_FOUND` when `from` is missing.
   */
  copy?(options: { from: string; to: string; signal?: AbortSignal }): Promise<void>;
}

export interface StorageCapabilities {
  /** `presignGet` exists and returns URLs an HTTP client can use. */
  readonly presign: boolean;
  /** `put` honours `ifNoneMatch` atomically (S3 `If-None-Match: *`, GCS `ifGenerationMatch=0`, Azure `If-None-Match: *`). */
  readonly conditionalCreate: boolean;
  /** `put` honours `ifMatch` atomically (S3 `If-Match`, GCS `ifGenerationMatch=<generation>`, Azure `If-Match`). */
  readonly conditionalReplace: boolean;
  /** `copy` exists and does not stream the object through wsd. */
  readonly serverSideCopy: boolean;
}

export interface KeyOptions {
  key: string;
  signal?: AbortSignal;
}

export interface PutOptions extends KeyOptions {
  body: Readable | Uint8Array;
  /** Fail with `ALREADY_EXISTS` instead of replacing an existing object (see `capabilities.conditionalCreate`). */
  ifNoneMatch?: boolean;
  /**
   * Replace the object only while its etag is this one, else `FAILED_PRECONDITION` (see
   * `capabilities.conditionalReplace`). Take the etag from `head`, `get`, `list` or an earlier put of the same key.
   */
  ifMatch?: string;
  /**
   * About how many bytes `body` will yield, when the caller knows (a non-negative integer). A hint, not a promise:
   * the body may be shorter or longer and is stored whole either way. Backends use it only to choose how to
   * transfer (S3 multipart picks part sizes from it, since 10 000 parts of the default size cap an upload at
   * ~48 GiB); `storage/local` ignores it.
   */
  sizeHint?: number;
  contentType?: string;
}

export interface PutResult {
  /** Bytes stored. */
  size: number;
  /** Etag of the object this put created. */
  etag: string;
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
  /** Etag of the version the body yields. */
  etag: string;
}

export interface ListOptions {
  prefix: string;
  signal?: AbortSignal;
}

export interface ObjectInfo {
  key: string;
  size: number;
  modifiedAt: Date;
  /** Etag of the version described. */
  etag: string;
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

/**
 * Throws `INVALID_ARGUMENT` for put options no backend accepts: both conditions at once, an empty `ifMatch`, a
 * `sizeHint` that is not a non-negative integer, or a condition `capabilities` does not declare. Backends call it
 * before reading the body.
 */
export function assertValidPutOptions(options: Pick<PutOptions, 'ifMatch' | 'ifNoneMatch' | 'sizeHint'>, capabilities: StorageCapabilities): void {
  const { ifMatch, ifNoneMatch, sizeHint } = options;
  if (ifMatch !== undefined && ifNoneMatch) {
    throw new WsdError('INVALID_ARGUMENT', 'put takes ifMatch or ifNoneMatch, not both', { field: 'ifMatch' });
  }
  if (ifMatch !== undefined && (typeof ifMatch !== 'string' || ifMatch.length === 0)) {
    throw new WsdError('INVALID_ARGUMENT', 'ifMatch must be a non-empty etag', { field: 'ifMatch' });
  }
  if (ifMatch !== undefined && !capabilities.conditionalReplace) {
    throw new WsdError('INVALID_ARGUMENT', 'this storage backend cannot replace conditionally (ifMatch)', { field: 'ifMatch' });
  }
  if (ifNoneMatch && !capabilities.conditionalCreate) {
    throw new WsdError('INVALID_ARGUMENT', 'this storage backend cannot create conditionally (ifNoneMatch)', { field: 'ifNoneMatch' });
  }
  if (sizeHint !== undefined && (!Number.isSafeInteger(sizeHint) || sizeHint < 0)) {
    throw new WsdError('INVALID_ARGUMENT', `sizeHint ${sizeHint} must be a non-negative integer`, { field: 'sizeHint' });
  }
}

/** Orders keys as every backend lists them: by their UTF-8 bytes. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
