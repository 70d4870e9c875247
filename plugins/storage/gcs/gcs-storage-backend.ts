import { createHash, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Readable, addAbortSignal } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { Storage } from '@google-cloud/storage';
import {
  WsdError,
  assertValidKey,
  assertValidPutOptions,
  compareKeys,
  isWsdError,
  maxKeyBytes,
  retry,
  type GetOptions,
  type Logger,
  type GetResult,
  type KeyOptions,
  type ListOptions,
  type ObjectInfo,
  type PutOptions,
  type PutResult,
  type StorageBackend,
  type StorageCapabilities,
} from '../../../core/plugin-api.js';
import type { GcsBackendOptions } from './gcs-config.js';
import { isRetryable, neverSent, toWsdError } from './gcs-errors.js';
import { GcsHttpError, GcsTransport, discard, httpError, type AuthHeaders, type GcsResponse } from './gcs-http.js';
import { fixedChunks, type Chunk } from './fixed-chunks.js';

/** The object resource fields the plugin reads. */
interface GcsObject {
  name: string;
  size: string;
  updated: string;
  generation: string;
  md5Hash?: string;
  metadata?: Record<string, string>;
}

/**
 * Custom metadata naming the put that wrote an object. After a put whose answer was lost, reading it back tells
 * whether that put landed: a conditional put that is retried and then refused, or that fails after its request
 * reached the service, is reported as what it was (ADR 0005's ambiguity, resolved here).
 */
const putIdKey = 'wsd-put-id';

/** Credential file types the Google auth library reads. */
const credentialTypes = new Set(['service_account', 'external_account', 'authorized_user', 'impersonated_service_account', 'external_account_authorized_user']);

const defaultEndpoint = 'https://storage.googleapis.com';

/**
 * Objects in a Google Cloud Storage bucket, through the JSON API.
 *
 * - put: a body that fits one chunk (`chunkSize`, 32 MiB) goes up in one multipart request; a larger one as a
 *   resumable upload in chunks, with the next chunk read from the body while one is sent. A chunk that fails
 *   transiently is sent again (the session keeps what arrived); a put that fails cancels its session, so nothing
 *   of it ever becomes visible (a session becomes an object only with its final chunk).
 * - etag: the object's `generation`. `ifNoneMatch` is `ifGenerationMatch=0`, `ifMatch` is
 *   `ifGenerationMatch=<generation>`, both evaluated by the service when the object is created (412 → ALREADY_EXISTS
 *   or FAILED_PRECONDITION).
 * - get: reads the generation its metadata named (`generation=` on every request), so a concurrent replace can
 *   never mix versions; a transfer that breaks midway continues with a range request for the rest.
 * - Integrity: every put sends the MD5 of the whole body (in the metadata or `X-Goog-Hash` of the final chunk, so
 *   the service refuses a corrupted upload) and compares the stored object's size and MD5.
 * - Retries: every request that failed transiently (408, 429, 5xx, resets, timeouts) is repeated with exponential
 *   backoff and jitter, at most `retries` times; conditional puts too, because the put id above resolves whether
 *   an earlier attempt landed.
 */
export class GcsStorageBackend implements StorageBackend {
  readonly capabilities: StorageCapabilities = { presign: false, conditionalCreate: true, conditionalReplace: true, serverSideCopy: false };
  readonly bucket: string;
  readonly prefix: string;
  readonly endpoint: URL;
  readonly #options: GcsBackendOptions;
  readonly #chunkSize: number;
  readonly #retries: number;
  readonly #retryDelayMs: number;
  readonly #log: Logger | undefined;
  #http: GcsTransport | undefined;
  #projectOfCredentials: (() => Promise<string | undefined>) | undefined;

  constructor(options: GcsBackendOptions) {
    this.#options = options;
    this.bucket = options.bucket;
    this.prefix = options.prefix ?? '';
    this.endpoint = new URL(options.endpoint ?? defaultEndpoint);
    this.#chunkSize = options.chunkSize ?? 32 * 1024 * 1024;
    this.#retries = options.retries ?? 5;
    this.#retryDelayMs = options.retryDelayMs ?? 500;
    this.#log = options.log;
  }

  /**
   * Reads the credentials and CA files, then checks the bucket with one cheap listing under the prefix (it needs
   * only `storage.objects.list`, which the backend needs anyway): a missing bucket fails (or is created with
   * `createBucket`), refused credentials fail with PERMISSION_DENIED.
   */
  async start(): Promise<void> {
    const ca = this.#options.caFile ? await readCaFile(this.#options.caFile) : undefined;
    const authHeaders = this.#options.anonymous ? undefined : await this.#credentials();
    this.#http = new GcsTransport({ endpoint: this.endpoint, ca, requestTimeoutMs: this.#options.requestTimeoutMs ?? 60_000, ...(authHeaders ? { authHeaders } : {}) });
    await this.#checkBucket();
  }

  async stop(): Promise<void> {
    this.#http?.close();
  }

  async put({ key, body, ifNoneMatch, ifMatch, sizeHint, contentType, signal }: PutOptions): Promise<PutResult> {
    const name = this.#objectName(key);
    assertValidPutOptions({ ifNoneMatch, ifMatch, sizeHint }, this.capabilities);
    const type = contentType ?? 'application/octet-stream';
    if (!/^[\w!#$&^.+-]+\/[\w!#$&^.+-]+(?:\s*;[ -~]*)?$/.test(type) || type.length > 255) {
      throw new WsdError('INVALID_ARGUMENT', `contentType ${JSON.stringify(type.slice(0, 40))} is not a media type`, { field: 'contentType' });
    }
    this.#transport();
    signal?.throwIfAborted();
    const what = `storage/gcs: put "${key}"`;
    const condition = ifNoneMatch ? 0 : ifMatch !== undefined ? generationOf(ifMatch) : undefined;
    if (condition === null) {
      // Not a generation: it names no version of any GCS object, so the key cannot be at that version.
      throw new WsdError('FAILED_PRECONDITION', `${what}: ifMatch ${JSON.stringify(ifMatch!.slice(0, 40))} is not a generation of this bucket`);
    }
    const put: PutAttempt = { name, key, what, condition, putId: randomUUID(), contentType: type, md5: createHash('md5'), size: 0, signal };
    // A body that stalls must not hold an aborted put: the signal ends it (as leaving the loop would anyway).
    if (signal && body instanceof Readable) addAbortSignal(signal, body);
    const chunks = fixedChunks(body instanceof Uint8Array ? body : (body as AsyncIterable<Uint8Array>), this.#chunkSize);
    try {
      const first = await nextChunk(chunks, put);
      return first.last ? await this.#putInOneRequest(put, first.data) : await this.#putResumable(put, first, chunks);
    } catch (error) {
      // A chunk read ahead may be waiting on the body: end the body so that the failure is reported now.
      if (body instanceof Readable) body.destroy();
      throw this.#failure(error, what, signal);
    } finally {
      await chunks.return(undefined).catch(() => {});
    }
  }

  async get({ key, range, signal }: GetOptions): Promise<GetResult> {
    const name = this.#objectName(key);
    const what = `storage/gcs: get "${key}"`;
    signal?.throwIfAborted();
    try {
      // A generation that disappears between the metadata and the read (replaced, deleted) is looked up again.
      for (let round = 1; ; round++) {
        const object = await this.#metadata(name, signal);
        const size = Number(object.size);
        const offset = range?.offset ?? 0;
        if (!Number.isSafeInteger(offset) || offset < 0 || (offset > 0 && offset >= size)) {
          throw new WsdError('INVALID_ARGUMENT', `range offset ${offset} is outside object ${key} of ${size} bytes`, { field: 'range.offset' });
        }
        if (range?.length !== undefined && (!Number.isSafeInteger(range.length) || range.length < 0)) {
          throw new WsdError('INVALID_ARGUMENT', `range length ${range.length} must be a non-negative integer`, { field: 'range.length' });
        }
        const end = Math.min(size, range?.length === undefined ? size : offset + range.length);
        const etag = object.generation;
        if (end === offset) return { body: Readable.from([]), size, contentLength: 0, etag };
        let first: GcsResponse;
        try {
          first = await this.#retrying(() => this.#openMedia(name, etag, offset, end, size, signal), signal);
        } catch (error) {
          if (error instanceof GcsHttpError && error.status === 404 && round < 3) continue;
          throw error;
        }
        const body = Readable.from(this.#mediaBody({ name, key, generation: etag, from: offset, end, size, signal }, first), { objectMode: false });
        return { body, size, contentLength: end - offset, etag };
      }
    } catch (error) {
      throw this.#failure(error, what, signal);
    }
  }

  async head({ key, signal }: KeyOptions): Promise<ObjectInfo> {
    const name = this.#objectName(key);
    signal?.throwIfAborted();
    try {
      return infoOf(key, await this.#metadata(name, signal));
    } catch (error) {
      throw this.#failure(error, `storage/gcs: head "${key}"`, signal);
    }
  }

  async *list({ prefix, signal }: ListOptions): AsyncIterable<ObjectInfo> {
    const what = `storage/gcs: list "${prefix}"`;
    const http = this.#transport();
    let pageToken: string | undefined;
    let previous: string | undefined;
    do {
      signal?.throwIfAborted();
      const query: Record<string, string> = { prefix: this.prefix + prefix, maxResults: '1000', fields: 'items(name,size,updated,generation),nextPageToken' };
      if (pageToken) query.pageToken = pageToken;
      let page: { items?: GcsObject[]; nextPageToken?: string };
      try {
        page = (await this.#retrying(() => http.json<typeof page>({ method: 'GET', url: this.#api(`/b/${enc(this.bucket)}/o`, query), signal }), signal)).data;
      } catch (error) {
        throw this.#failure(error, what, signal);
      }
      for (const item of page.items ?? []) {
        const key = item.name.slice(this.prefix.length);
        // Callers rely on the order (the contract's UTF-8 byte order, which the service keeps); never pass on another.
        if (previous !== undefined && compareKeys(previous, key) >= 0) {
          throw new WsdError('INTERNAL', `${what}: the service listed ${JSON.stringify(key)} after ${JSON.stringify(previous)}, not in UTF-8 byte order`);
        }
        previous = key;
        // Objects other tools made under the prefix with names no key can have (a console "folder" `a/`) are skipped.
        if (!isValidKey(key)) continue;
        yield infoOf(key, item);
      }
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  async delete({ key, signal }: KeyOptions): Promise<void> {
    const name = this.#objectName(key);
    const http = this.#transport();
    signal?.throwIfAborted();
    try {
      await this.#retrying(async () => {
        const response = await http.send({ method: 'DELETE', url: this.#api(`/b/${enc(this.bucket)}/o/${enc(name)}`), signal });
        if (response.status === 404) return discard(response);
        if (response.status < 200 || response.status >= 300) throw await httpError(response);
        discard(response);
      }, signal);
    } catch (error) {
      throw this.#failure(error, `storage/gcs: delete "${key}"`, signal);
    }
  }

  // --- put -----------------------------------------------------------------------------------------------------

  /** A body that fits one chunk: one multipart request (metadata + bytes), retried as a whole. */
  async #putInOneRequest(put: PutAttempt, data: Buffer): Promise<PutResult> {
    const http = this.#transport();
    const md5 = put.md5.digest('base64');
    const boundary = `wsd-${randomUUID()}`;
    const metadata = { name: put.name, contentType: put.contentType, md5Hash: md5, metadata: { [putIdKey]: put.putId } };
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\ncontent-type: application/json; charset=utf-8\r\n\r\n${JSON.stringify(metadata)}\r\n--${boundary}\r\ncontent-type: ${put.contentType}\r\n\r\n`),
      data,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const query: Record<string, string> = { uploadType: 'multipart' };
    if (put.condition !== undefined) query.ifGenerationMatch = String(put.condition);
    const url = this.#upload(`/b/${enc(this.bucket)}/o`, query);
    let landed = false;
    try {
      const { data: object } = await this.#retrying(
        () =>
          http.json<GcsObject>({ method: 'POST', url, headers: { 'content-type': `multipart/related; boundary=${boundary}` }, body, signal: put.signal }).catch((error: unknown) => {
            if (isRetryable(error) && !neverSent(error)) landed = true;
            throw error;
          }),
        put.signal,
      );
      return await this.#checkStored(put, object, data.length, md5);
    } catch (error) {
      const settled = await this.#settleFailedPut(put, error, landed, data.length, md5);
      if (settled instanceof LandedPut) return settled.result;
      throw settled;
    }
  }

  /** A larger body: a resumable session, one chunk after another, the next read while one is sent. */
  async #putResumable(put: PutAttempt, first: Chunk, chunks: AsyncGenerator<Chunk>): Promise<PutResult> {
    const session = await this.#openSession(put);
    const progress = { finalMayHaveLanded: false };
    let md5 = '';
    try {
      let chunk = first;
      let offset = 0;
      for (;;) {
        // Read ahead while this chunk is sent: the body's producer (tar, zstd) keeps working meanwhile.
        const ahead = chunk.last ? undefined : nextChunk(chunks, put);
        ahead?.catch(() => {});
        if (chunk.last) md5 = put.md5.digest('base64');
        const object = await this.#sendChunk(put, session, chunk, offset, chunk.last ? md5 : undefined, progress);
        offset += chunk.data.length;
        if (object) return await this.#checkStored(put, object, offset, md5);
        if (!ahead) throw new WsdError('INTERNAL', `${put.what}: the service did not finish the upload with its final chunk`);
        chunk = await ahead;
      }
    } catch (error) {
      await this.#cancelSession(session);
      const settled = await this.#settleFailedPut(put, error, progress.finalMayHaveLanded, put.size, md5);
      if (settled instanceof LandedPut) return settled.result;
      throw settled;
    }
  }

  /** Starts a resumable upload; the condition is given here and evaluated by the service on the final chunk. */
  async #openSession(put: PutAttempt): Promise<URL> {
    const http = this.#transport();
    const query: Record<string, string> = { uploadType: 'resumable' };
    if (put.condition !== undefined) query.ifGenerationMatch = String(put.condition);
    const metadata = JSON.stringify({ name: put.name, contentType: put.contentType, metadata: { [putIdKey]: put.putId } });
    const { headers } = await this.#retrying(
      () =>
        http.json({
          method: 'POST',
          url: this.#upload(`/b/${enc(this.bucket)}/o`, query),
          headers: { 'content-type': 'application/json; charset=utf-8', 'x-upload-content-type': put.contentType },
          body: Buffer.from(metadata),
          signal: put.signal,
        }),
      put.signal,
    );
    const location = headers.location;
    if (typeof location !== 'string' || !/^https?:/.test(new URL(location, this.endpoint).protocol)) {
      throw new WsdError('INTERNAL', `${put.what}: the service started an upload without a session URI`);
    }
    return new URL(location, this.endpoint);
  }

  /**
   * Sends one chunk (`Content-Range`), again after a transient failure, and the rest of it when the service kept
   * only part. Returns the object once the final chunk is in. A chunk is sent again whole at the same offset, as
   * Google's own clients do: the service keeps the bytes it already has.
   */
  async #sendChunk(put: PutAttempt, session: URL, chunk: Chunk, offset: number, md5: string | undefined, progress: { finalMayHaveLanded: boolean }): Promise<GcsObject | undefined> {
    const http = this.#transport();
    const total = chunk.last ? offset + chunk.data.length : undefined;
    let kept = 0;
    return await this.#retrying(
      async () => {
        const part = chunk.data.subarray(kept);
        const from = offset + kept;
        const range = part.length === 0 ? `bytes */${total}` : `bytes ${from}-${from + part.length - 1}/${total ?? '*'}`;
        let response: GcsResponse;
        try {
          response = await http.send({ method: 'PUT', url: session, headers: { 'content-range': range, ...(md5 ? { 'x-goog-hash': `md5=${md5}` } : {}) }, body: part, signal: put.signal });
        } catch (error) {
          if (chunk.last && !neverSent(error)) progress.finalMayHaveLanded = true;
          throw error;
        }
        if (response.status === 308) {
          discard(response);
          const persisted = persistedBytes(response.headers.range);
          if (total === undefined && persisted >= offset + chunk.data.length) return undefined;
          if (persisted < offset || persisted > offset + chunk.data.length) {
            throw new WsdError('INTERNAL', `${put.what}: the service holds ${persisted} bytes of the upload, outside the chunk at ${offset}`);
          }
          kept = persisted - offset;
          throw new ChunkIncomplete(`the service kept ${persisted - from} of ${part.length} bytes sent`);
        }
        if (response.status === 200 || response.status === 201) {
          const text = JSON.parse((await readAll(response)).toString('utf8') || '{}') as GcsObject;
          if (total === undefined) {
            // Real GCS never finishes an upload without its total; an emulator may. What it stored is incomplete.
            await this.#removeIncomplete(put, text);
            throw new WsdError('INTERNAL', `${put.what}: the service finished the upload after ${offset + chunk.data.length} bytes, before the body ended; the incomplete object was removed`);
          }
          return text;
        }
        const error = await httpError(response);
        if (chunk.last && isRetryable(error)) progress.finalMayHaveLanded = true;
        if (response.status === 404 || response.status === 410) {
          // The service forgot the session (expired, or an emulator restarted): nothing of it became an object.
          throw new WsdError('UNAVAILABLE', `${put.what}: the upload session was lost after ${offset} bytes (HTTP ${error.status}); the put did not happen`, { cause: error });
        }
        throw error;
      },
      put.signal,
      (error) => error instanceof ChunkIncomplete,
    );
  }

  /** Ends an upload session so that nothing of it is kept (best effort: an abandoned session expires in a week). */
  async #cancelSession(session: URL): Promise<void> {
    const http = this.#transport();
    try {
      const response = await http.send({ method: 'DELETE', url: session, timeoutMs: Math.min(10_000, this.#options.requestTimeoutMs ?? 60_000) });
      discard(response);
    } catch {
      // Unreachable: the session dies with the service's restart or expires; it never becomes an object.
    }
  }

  /**
   * Compares what the service stored with what was sent. A mismatch (an emulator that appended a resent chunk) is
   * removed at once, only that generation, so that no wrong object stays visible.
   */
  async #checkStored(put: PutAttempt, object: GcsObject, size: number, md5: string): Promise<PutResult> {
    if (Number(object.size) !== size || (object.md5Hash && object.md5Hash !== md5) || !object.generation) {
      await this.#removeIncomplete(put, object);
      throw new WsdError('INTERNAL', `${put.what}: the service stored ${object.size} bytes (md5 ${object.md5Hash}) for ${size} bytes sent (md5 ${md5}); the object was removed`);
    }
    return { size, etag: object.generation };
  }

  async #removeIncomplete(put: PutAttempt, object: GcsObject): Promise<void> {
    if (!object.generation) return;
    this.#log?.warn('the service stored something else than was sent; removing that generation', { bucket: this.bucket, key: put.key, generation: object.generation, size: object.size });
    const http = this.#transport();
    try {
      const response = await http.send({ method: 'DELETE', url: this.#api(`/b/${enc(this.bucket)}/o/${enc(put.name)}`, { ifGenerationMatch: object.generation }) });
      discard(response);
    } catch {
      // Reported by the caller's error either way.
    }
  }

  /**
   * What a failed put amounts to. When an attempt may have landed (its answer was lost), the object is read back:
   * if it carries this put's id, size and MD5, the put happened. Otherwise a 412 is the condition's refusal only when
   * no earlier attempt can have landed; after one that may have, the outcome is unknown (UNAVAILABLE).
   */
  async #settleFailedPut(put: PutAttempt, error: unknown, mayHaveLanded: boolean, size: number, md5: string): Promise<unknown> {
    const refused = error instanceof GcsHttpError && error.status === 412;
    if (md5 && (mayHaveLanded || (isRetryable(error) && !neverSent(error)))) {
      const own = await this.#metadata(put.name, undefined, 1).catch(() => undefined);
      if (own?.metadata?.[putIdKey] === put.putId && Number(own.size) === size && (!own.md5Hash || own.md5Hash === md5)) {
        this.#log?.info('put landed although its answer was lost', { bucket: this.bucket, key: put.key, generation: own.generation });
        return new LandedPut({ size, etag: own.generation });
      }
    }
    if (refused && mayHaveLanded) {
      // An earlier attempt may have landed and been replaced since: this refusal cannot be vouched for (the storage
      // contract forbids reporting one then). The caller re-reads.
      return new WsdError('UNAVAILABLE', `${put.what}: outcome unknown (an attempt's answer was lost and the object has changed since); read the object again`, { cause: error });
    }
    if (refused) {
      return put.condition === 0
        ? new WsdError('ALREADY_EXISTS', `${put.what}: the object exists already (ifNoneMatch)`, { cause: error })
        : new WsdError('FAILED_PRECONDITION', `${put.what}: the object is not at generation ${put.condition} (ifMatch)`, { cause: error });
    }
    return error;
  }

  // --- get -----------------------------------------------------------------------------------------------------

  /** Opens `[from, end)` of one generation; resolves once the service answered with the bytes. */
  async #openMedia(name: string, generation: string, from: number, end: number, size: number, signal: AbortSignal | undefined): Promise<GcsResponse> {
    const http = this.#transport();
    const ranged = from > 0 || end < size;
    const response = await http.send({
      method: 'GET',
      url: this.#api(`/b/${enc(this.bucket)}/o/${enc(name)}`, { alt: 'media', generation }),
      headers: { 'accept-encoding': 'identity', ...(ranged ? { range: `bytes=${from}-${end - 1}` } : {}) },
      signal,
    });
    if (response.status !== (ranged ? 206 : 200)) {
      if (response.status === 200 || response.status === 206) {
        discard(response);
        throw new WsdError('INTERNAL', `the service answered a ${ranged ? 'range' : 'whole'} read with HTTP ${response.status}`);
      }
      throw await httpError(response);
    }
    const servedGeneration = response.headers['x-goog-generation'];
    const length = response.headers['content-length'];
    if ((typeof servedGeneration === 'string' && servedGeneration !== generation) || (length !== undefined && Number(length) !== end - from)) {
      discard(response);
      throw new WsdError('INTERNAL', `the service served generation ${String(servedGeneration)} (${String(length)} bytes) for generation ${generation} (${end - from} bytes)`);
    }
    return response;
  }

  /** The bytes of one generation; a transfer that breaks is continued from where it stopped. */
  async *#mediaBody(read: { name: string; key: string; generation: string; from: number; end: number; size: number; signal: AbortSignal | undefined }, first: GcsResponse): AsyncGenerator<Buffer> {
    const { signal } = read;
    let position = read.from;
    let response = first;
    let failures = 0;
    let failedAt = -1;
    try {
      for (;;) {
        try {
          for await (const chunk of response.body as AsyncIterable<Buffer>) {
            position += chunk.length;
            if (position > read.end) throw new WsdError('INTERNAL', `the service sent more than the ${read.end - read.from} bytes asked for`);
            yield chunk;
          }
          if (position === read.end) return;
          throw Object.assign(new Error(`the answer ended after ${position - read.from} of ${read.end - read.from} bytes`), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
        } catch (error) {
          response.body.destroy();
          // The retry budget is per stall: a long read that moves on between failures starts afresh.
          if (position > failedAt) failures = 0;
          failedAt = position;
          if (signal?.aborted || !isRetryable(error) || ++failures > this.#retries) throw error;
          this.#log?.warn('read broke midway; continuing with the rest', { bucket: this.bucket, key: read.key, position, error: toWsdError(error, 'storage/gcs').message });
          // The same backoff as the request retries.
          await sleep(Math.round(Math.min(30_000, this.#retryDelayMs * 2 ** (failures - 1)) * (1 - 0.5 * Math.random())), undefined, { signal });
          response = await this.#retrying(() => this.#openMedia(read.name, read.generation, position, read.end, read.size, signal), signal);
        }
      }
    } catch (error) {
      const replaced = error instanceof GcsHttpError && error.status === 404;
      throw replaced
        ? new WsdError('UNAVAILABLE', `storage/gcs: get "${read.key}": generation ${read.generation} was replaced or deleted during the read`, { cause: error })
        : this.#failure(error, `storage/gcs: get "${read.key}" (after ${position - read.from} bytes)`, signal);
    } finally {
      response.body.destroy();
    }
  }

  // --- helpers -------------------------------------------------------------------------------------------------

  async #metadata(name: string, signal: AbortSignal | undefined, attempts?: number): Promise<GcsObject> {
    const http = this.#transport();
    const url = this.#api(`/b/${enc(this.bucket)}/o/${enc(name)}`, { fields: 'name,size,updated,generation,md5Hash,metadata' });
    return (await this.#retrying(() => http.json<GcsObject>({ method: 'GET', url, signal }), signal, undefined, attempts)).data;
  }

  async #checkBucket(): Promise<void> {
    const http = this.#transport();
    const where = `storage/gcs: bucket "${this.bucket}" at ${this.endpoint.origin}`;
    const probe = () => http.json({ method: 'GET', url: this.#api(`/b/${enc(this.bucket)}/o`, { prefix: this.prefix, maxResults: '1', fields: 'nextPageToken' }) });
    try {
      await this.#retrying(probe, undefined);
      return;
    } catch (error) {
      if (!(error instanceof GcsHttpError && error.status === 404)) {
        const mapped = toWsdError(error, where);
        throw mapped.code === 'PERMISSION_DENIED' ? toWsdError(error, `${where}: credentials refused`) : mapped;
      }
      if (!this.#options.createBucket) {
        throw new WsdError('FAILED_PRECONDITION', `${where} does not exist (${error.message || 'HTTP 404'}); create it, or set createBucket: true`, { cause: error });
      }
    }
    await this.#createBucket(where);
    try {
      await this.#retrying(probe, undefined);
    } catch (error) {
      throw toWsdError(error, where);
    }
  }

  async #createBucket(where: string): Promise<void> {
    const http = this.#transport();
    const project = this.#options.projectId ?? (await this.#projectOfCredentials?.().catch(() => undefined));
    if (!project) {
      throw new WsdError('INVALID_ARGUMENT', `${where}: createBucket needs projectId (the credentials name no project)`, { field: 'projectId' });
    }
    const body = Buffer.from(JSON.stringify({ name: this.bucket, ...(this.#options.bucketLocation ? { location: this.#options.bucketLocation } : {}) }));
    try {
      await this.#retrying(
        () =>
          http.json({ method: 'POST', url: this.#api('/b', { project }), headers: { 'content-type': 'application/json; charset=utf-8' }, body }, (s) => (s >= 200 && s < 300) || s === 409),
        undefined,
      );
    } catch (error) {
      throw toWsdError(error, `${where}: could not create it`);
    }
  }

  /** The Authorization header source: the credentials file or the Application Default Credentials, via the SDK. */
  async #credentials(): Promise<AuthHeaders> {
    const { keyFile } = this.#options;
    if (keyFile) {
      let type: unknown;
      try {
        type = (JSON.parse(await readFile(keyFile, 'utf8')) as { type?: unknown }).type;
      } catch (error) {
        const reason = (error as NodeJS.ErrnoException).code ?? 'not JSON';
        throw new WsdError('INVALID_ARGUMENT', `storage/gcs: keyFile ${keyFile} cannot be read as a credentials file (${reason})`, { field: 'keyFile' });
      }
      if (typeof type !== 'string' || !credentialTypes.has(type)) {
        throw new WsdError('INVALID_ARGUMENT', `storage/gcs: keyFile ${keyFile} is not a Google credentials file (type ${JSON.stringify(type)})`, { field: 'keyFile' });
      }
    }
    // The SDK builds the auth client the way it would for its own requests (key file or ADC, with its scopes).
    const storage = new Storage({
      ...(keyFile ? { keyFilename: keyFile } : {}),
      ...(this.#options.projectId ? { projectId: this.#options.projectId } : {}),
    });
    const auth = storage.authClient;
    this.#projectOfCredentials = async () => (await auth.getProjectId()) ?? undefined;
    return async () => {
      const headers = (await auth.getRequestHeaders()) as unknown as Record<string, string> | Headers;
      return headers instanceof Headers ? Object.fromEntries(headers.entries()) : { ...headers };
    };
  }

  #retrying<T>(fn: () => Promise<T>, signal: AbortSignal | undefined, alsoRetry?: (error: unknown) => boolean, attempts = this.#retries + 1): Promise<T> {
    return retry(fn, {
      attempts,
      initialDelayMs: this.#retryDelayMs,
      maxDelayMs: 30_000,
      jitter: 0.5,
      retryable: (error) => isRetryable(error) || (alsoRetry?.(error) ?? false),
      signal,
      keepAlive: true,
      onRetry: (error, { attempt, delayMs }) => {
        if (!(error instanceof ChunkIncomplete)) this.#log?.warn('request failed transiently; retrying', { bucket: this.bucket, attempt, delayMs, error: toWsdError(error, 'storage/gcs').message });
      },
    });
  }

  #failure(error: unknown, what: string, signal: AbortSignal | undefined): WsdError {
    if (signal?.aborted && !isWsdError(error)) return new WsdError('CANCELLED', `${what}: cancelled`, { cause: error });
    if (isWsdError(error) && error.code !== 'CANCELLED' && !error.message.startsWith('storage/gcs')) {
      return new WsdError(error.code, `${what}: ${error.message}`, { cause: error, ...(error.field ? { field: error.field } : {}) });
    }
    return toWsdError(error, what);
  }

  #transport(): GcsTransport {
    if (!this.#http) throw new WsdError('FAILED_PRECONDITION', `storage/gcs: bucket "${this.bucket}" is used before start()`);
    return this.#http;
  }

  #objectName(key: string): string {
    assertValidKey(key);
    const name = this.prefix + key;
    if (Buffer.byteLength(name) > maxKeyBytes) {
      throw new WsdError('INVALID_ARGUMENT', `key ${JSON.stringify(key.slice(0, 40))}… with prefix ${JSON.stringify(this.prefix)} is longer than ${maxKeyBytes} bytes`, { field: 'key' });
    }
    return name;
  }

  #api(path: string, query: Record<string, string> = {}): URL {
    return this.#url(`/storage/v1${path}`, query);
  }

  #upload(path: string, query: Record<string, string>): URL {
    return this.#url(`/upload/storage/v1${path}`, query);
  }

  #url(path: string, query: Record<string, string>): URL {
    const base = this.endpoint.href.replace(/\/+$/, '');
    const url = new URL(`${base}${path}`);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    return url;
  }
}

/** The state of one put, shared by its requests. */
interface PutAttempt {
  name: string;
  key: string;
  what: string;
  /** ifGenerationMatch: 0 for ifNoneMatch, the generation for ifMatch. */
  condition: number | string | undefined;
  putId: string;
  contentType: string;
  /** MD5 of the body read so far. */
  md5: ReturnType<typeof createHash>;
  /** Bytes of the body read so far. */
  size: number;
  signal: AbortSignal | undefined;
}

/** A failed put found to have landed after all (its answer was lost): its result. */
class LandedPut {
  constructor(readonly result: PutResult) {}
}

/** The service kept only part of a chunk: the rest is sent next (counts as a retry). */
class ChunkIncomplete extends Error {}

async function nextChunk(chunks: AsyncGenerator<Chunk>, put: PutAttempt): Promise<Chunk> {
  put.signal?.throwIfAborted();
  let next: IteratorResult<Chunk>;
  try {
    next = await chunks.next();
  } catch (error) {
    if (put.signal?.aborted || isWsdError(error)) throw error;
    throw new WsdError('INTERNAL', `${put.what}: the body failed after ${put.size} bytes: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  }
  put.signal?.throwIfAborted();
  if (next.done) throw new WsdError('INTERNAL', `${put.what}: the body ended without a final chunk`);
  put.md5.update(next.value.data);
  put.size += next.value.data.length;
  return next.value;
}

/** `ifMatch` as a generation, or null when it cannot be one. */
function generationOf(etag: string): string | null {
  return /^[1-9][0-9]{0,19}$/.test(etag) ? etag : null;
}

/** Bytes the service holds of a resumable upload, from `Range: bytes=0-<last>` (none without the header). */
function persistedBytes(range: string | undefined): number {
  const match = /^bytes=0-(\d+)$/.exec(range ?? '');
  return match ? Number(match[1]) + 1 : 0;
}

function infoOf(key: string, object: GcsObject): ObjectInfo {
  return { key, size: Number(object.size), modifiedAt: new Date(object.updated), etag: object.generation };
}

function isValidKey(key: string): boolean {
  try {
    assertValidKey(key);
    return true;
  } catch {
    return false;
  }
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

async function readAll(response: GcsResponse): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of response.body as AsyncIterable<Buffer>) parts.push(chunk);
  return Buffer.concat(parts);
}

async function readCaFile(file: string): Promise<string[]> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (error) {
    throw new WsdError('INVALID_ARGUMENT', `storage/gcs: caFile ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { field: 'caFile' });
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new WsdError('INVALID_ARGUMENT', `storage/gcs: caFile ${file} holds no PEM certificate`, { field: 'caFile' });
  }
  return [...tls.rootCertificates, pem];
}
