import { setTimeout as sleep } from 'node:timers/promises';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import {
  WsdError,
  assertValidKey,
  assertValidPutOptions,
  isWsdError,
  maxKeyBytes,
  retry,
  type GetOptions,
  type GetResult,
  type KeyOptions,
  type ListOptions,
  type Logger,
  type ObjectInfo,
  type PutOptions,
  type PutResult,
  type StorageBackend,
  type StorageCapabilities,
} from '../../../core/plugin-api.js';
import { PartReader, maxParts, md5Hex, multipartEtag, partSizeFor, type Part } from './part-reader.js';
import { endpointOf, type S3Config, type S3Endpoint } from './s3-config.js';
import { credentialProvider } from './s3-credentials.js';
import { S3ServiceError, S3TimeoutError, retryClass, toS3Error } from './s3-errors.js';
import { S3Http, discardBody, header, uriEscape } from './s3-http.js';
import {
  completeMultipartBody,
  createBucketBody,
  normalizeEtag,
  parseErrorDocument,
  parseListMultipartUploads,
  parseListObjectsV2,
  tagText,
  type IncompleteUpload,
  type ListPage,
} from './s3-xml.js';

export interface S3StorageBackendOptions {
  /** The plugin's validated config, with file paths already absolute. */
  config: S3Config;
  /** PEM text of `caFile`, read by the caller. */
  ca?: string | undefined;
  log?: Logger | undefined;
  /** Environment for the `env`/`auto`/`iam` credential sources (tests); default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Objects larger than this are copied part by part (default 5 GiB, S3's limit for one CopyObject; tests lower it). */
  maxSingleCopyBytes?: number;
  /** Part size of such copies (default 512 MiB; at least 5 MiB). */
  copyPartBytes?: number;
}

/** A failed abort of a multipart upload is tried again in the background for this long (the server may be back). */
const abortRetryWindowMs = 15 * 60_000;
/** S3 refuses presigned URLs valid for longer than 7 days. */
const maxPresignSeconds = 7 * 24 * 3600;

/**
 * StorageBackend on S3 and S3-compatible stores (AWS S3, MinIO, Ceph RGW, …) through the `minio` client.
 *
 * - put: a body up to `partSize` goes in one PUT (with `Content-MD5`); a longer one as a multipart upload driven
 *   here — parts of `partSize` (growing for very long bodies, see `partSizeFor`), `concurrency` at once — whose
 *   `If-None-Match: *` / `If-Match` goes on CompleteMultipartUpload, where AWS S3 evaluates it (the minio client's
 *   own putObject sends it on the initiating request, where only MinIO checks it). A failed, refused or cancelled
 *   upload is aborted, so no parts linger; an abort the server cannot take now is retried in the background.
 * - Retries: every request on transient failures (connection refused or reset, timeouts, 5xx, throttling), with
 *   exponential backoff and jitter, `retry.attempts` in all. A conditional commit is retried only on failures that
 *   prove the server did not act (refused connection, 503/429 throttling); after an ambiguous one (a reset, a 500)
 *   the object is read: if it holds exactly what this put wrote (the ETag S3 computes from the bytes), the put
 *   succeeded; otherwise the outcome is unknown and the put reports UNAVAILABLE (see the contract).
 * - Cancellation: `signal` ends reading the body and every request in flight; once the body is read and the
 *   committing request (the PUT or CompleteMultipartUpload) is sent, the put finishes either way — the write is then
 *   already (being) decided by the server, so reporting CANCELLED could be false.
 * - get streams one GET; a transfer that breaks midway resumes from the last byte with `Range` and
 *   `If-Match: <etag>`, so the body is always one version.
 */
export class S3StorageBackend implements StorageBackend {
  readonly capabilities: StorageCapabilities = { presign: true, conditionalCreate: true, conditionalReplace: true, serverSideCopy: true };
  readonly endpoint: S3Endpoint;
  readonly bucket: string;
  readonly #config: S3Config;
  readonly #http: S3Http;
  readonly #log: Logger | undefined;
  readonly #prefix: string;
  readonly #maxSingleCopyBytes: number;
  readonly #copyPartBytes: number;
  /** Uploads whose abort failed, by upload id, with their background retry timer. */
  readonly #pendingAborts = new Map<string, { objectName: string; timer: NodeJS.Timeout | undefined }>();
  #swept: Promise<number> = Promise.resolve(0);
  /** Aborted by stop(): ends the background work (the start-up sweep) at once. */
  readonly #stopping = new AbortController();

  constructor(options: S3StorageBackendOptions) {
    const { config } = options;
    this.#config = config;
    this.#log = options.log;
    this.#prefix = config.prefix;
    this.bucket = config.bucket;
    this.endpoint = endpointOf(config);
    this.#maxSingleCopyBytes = options.maxSingleCopyBytes ?? 5 * 1024 ** 3;
    this.#copyPartBytes = options.copyPartBytes ?? 512 * 1024 * 1024;
    this.#http = new S3Http({
      endpoint: this.endpoint,
      region: config.region,
      bucket: config.bucket,
      credentials: credentialProvider(config.credentials, options.env),
      timeoutMs: config.requestTimeout,
      ca: options.ca,
      // Parts of a few puts at once, plus gets and small requests beside them.
      maxSockets: Math.max(16, config.concurrency * 4),
    });
  }

  /**
   * Checks that the credentials work and the bucket exists (a one-key listing under `prefix`); creates the bucket
   * when it is missing and `createBucket` is set. Then, in the background, aborts uploads under `prefix` older than
   * `abortUploadsOlderThan` (left by a daemon that crashed mid-put).
   */
  async start(): Promise<void> {
    try {
      await this.#retrying('start: list the bucket', () => this.#listPage(this.#prefix, undefined, 1, undefined));
    } catch (error) {
      if (!(isWsdError(error) && error.cause instanceof S3ServiceError && error.cause.code === 'NoSuchBucket')) throw error;
      if (!this.#config.createBucket) {
        throw new WsdError(
          'FAILED_PRECONDITION',
          `storage/s3: bucket ${this.bucket} does not exist at ${this.endpoint.url} (NoSuchBucket); create it, or set createBucket: true`,
          { cause: error },
        );
      }
      await this.#createBucket();
    }
    const olderThan = this.#config.abortUploadsOlderThan;
    if (olderThan > 0) {
      this.#swept = this.abortUploadsStartedBefore(new Date(Date.now() - olderThan), this.#stopping.signal).catch((error: unknown) => {
        if (this.#stopping.signal.aborted) return 0;
        this.#log?.warn('storage/s3: could not clean up abandoned multipart uploads', { error: (error as Error).message });
        return 0;
      });
    }
  }

  /** Resolves once the start-up clean-up of abandoned uploads is over, with how many it aborted (tests). */
  get abandonedUploadsAborted(): Promise<number> {
    return this.#swept;
  }

  /**
   * Ends the start-up sweep, tries once more (for at most 5 s) to abort uploads whose abort failed, then gives up on
   * them (the next start's sweep or a lifecycle rule gets them) and closes the connections.
   */
  async stop(): Promise<void> {
    this.#stopping.abort();
    const pending = [...this.#pendingAborts.entries()];
    for (const [, entry] of pending) clearTimeout(entry.timer);
    const lastTry = AbortSignal.timeout(5_000);
    await Promise.allSettled(pending.map(([uploadId, { objectName }]) => this.#abortRequest(objectName, uploadId, lastTry)));
    this.#pendingAborts.clear();
    await this.#swept;
    this.#http.close();
  }

  async #createBucket(): Promise<void> {
    await this.#retrying('start: create the bucket', async () => {
      try {
        await discardBody(await this.#http.request({ method: 'PUT', body: createBucketBody(this.#config.region), expect: [200] }));
      } catch (error) {
        // Another node created it meanwhile (or an earlier try whose answer was lost did).
        if (error instanceof S3ServiceError && error.code === 'BucketAlreadyOwnedByYou') return;
        if (error instanceof S3ServiceError && error.code === 'BucketAlreadyExists') {
          throw new WsdError('FAILED_PRECONDITION', `storage/s3: bucket ${this.bucket} cannot be created at ${this.endpoint.url}: the name belongs to another account`);
        }
        throw error;
      }
    });
    this.#log?.info('storage/s3: created the bucket', { bucket: this.bucket });
  }

  async put({ key, body, ifNoneMatch, ifMatch, sizeHint, contentType, signal }: PutOptions): Promise<PutResult> {
    const objectName = this.#objectName(key);
    assertValidPutOptions({ ifNoneMatch, ifMatch, sizeHint }, this.capabilities);
    const operation = `put ${key}`;
    const condition = ifNoneMatch ? 'ifNoneMatch' : ifMatch !== undefined ? 'ifMatch' : undefined;
    const conditionHeaders: Record<string, string> = {};
    if (ifNoneMatch) conditionHeaders['if-none-match'] = '*';
    if (ifMatch !== undefined) {
      const etag = normalizeEtag(ifMatch);
      // No S3 object has an ETag outside visible ASCII; such a value cannot match (and must not reach a header).
      if (!/^[\x21\x23-\x7e]+$/.test(etag)) throw new WsdError('FAILED_PRECONDITION', `storage/s3: ${operation}: object has no version ${JSON.stringify(ifMatch)} (ifMatch)`);
      conditionHeaders['if-match'] = `"${etag}"`;
    }
    const plan: PutPlan = { key, objectName, operation, condition, conditionHeaders, contentType, sizeHint, signal };
    this.#throwIfCancelled(signal, operation);
    const reader = new PartReader(body);
    try {
      const first = await this.#readPart(reader, partSizeFor(1, this.#config.partSize, sizeHint), plan, signal);
      if (first.last) return await this.#putSingle(plan, first.data);
      return await this.#putMultipart(plan, reader, first);
    } finally {
      await reader.close();
    }
  }

  async #putSingle(plan: PutPlan, data: Buffer): Promise<PutResult> {
    this.#throwIfCancelled(plan.signal, plan.operation);
    const md5 = md5Hex(data);
    const etag = await this.#commit(plan, md5, async () => {
      const response = await this.#http.request({
        method: 'PUT',
        objectName: plan.objectName,
        headers: {
          ...plan.conditionHeaders,
          'content-type': plan.contentType ?? 'application/octet-stream',
          'content-md5': Buffer.from(md5, 'hex').toString('base64'),
        },
        body: data,
        expect: [200],
      });
      await discardBody(response);
      return normalizeEtag(header(response, 'etag'));
    });
    return { size: data.length, etag };
  }

  async #putMultipart(plan: PutPlan, reader: PartReader, first: Part): Promise<PutResult> {
    const { objectName, operation, signal } = plan;
    this.#throwIfCancelled(signal, operation);
    const uploadId = await this.#retrying(
      operation,
      async () => {
        const { text } = await this.#http.requestText({
          method: 'POST',
          objectName,
          query: 'uploads',
          headers: { 'content-type': plan.contentType ?? 'application/octet-stream' },
          expect: [200],
          signal,
        });
        const id = tagText(text, 'UploadId');
        if (!id) throw new Error(`no UploadId in the answer to CreateMultipartUpload: ${text.slice(0, 200)}`);
        return id;
      },
      { signal },
    );
    // Ends the parts in flight at the first failure (or the caller's abort), before the upload is aborted.
    const parts = new AbortController();
    const onAbort = () => parts.abort(signal!.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) parts.abort(signal.reason);
    const inflight = new Set<Promise<void>>();
    const etags: string[] = [];
    let failure: unknown;
    try {
      for (let partNumber = 1, part = first; ; ) {
        const number = partNumber;
        const data = part.data;
        const upload: Promise<void> = this.#retrying(`${operation}: part ${number}`, () => this.#uploadPart(objectName, uploadId, number, data, parts.signal), {
          signal: parts.signal,
        }).then(
          (etag) => {
            etags[number - 1] = etag;
            inflight.delete(upload);
          },
          (error: unknown) => {
            failure ??= error;
            parts.abort();
            inflight.delete(upload);
          },
        );
        inflight.add(upload);
        if (part.last) break;
        while (inflight.size >= this.#config.concurrency && failure === undefined) await Promise.race(inflight);
        if (failure !== undefined) break;
        if (++partNumber > maxParts) {
          throw new WsdError('INVALID_ARGUMENT', `storage/s3: ${operation}: body longer than ${maxParts} parts; pass sizeHint or raise partSize`, { field: 'body' });
        }
        part = await this.#readPart(reader, partSizeFor(partNumber, this.#config.partSize, plan.sizeHint), plan, parts.signal);
      }
      await Promise.all(inflight);
      if (failure !== undefined) throw failure;
      this.#throwIfCancelled(signal, operation);
      const partList = etags.map((etag, i) => ({ partNumber: i + 1, etag }));
      const etag = await this.#commit(plan, multipartEtag(etags), () => this.#completeUpload(objectName, uploadId, partList, plan.conditionHeaders));
      return { size: reader.bytesRead, etag };
    } catch (error) {
      parts.abort();
      await Promise.allSettled(inflight);
      await this.#abortUpload(objectName, uploadId);
      if (signal?.aborted) throw this.#cancelled(operation, error);
      throw isWsdError(error) ? error : toS3Error(error, this.#context(operation, plan.condition));
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async #uploadPart(objectName: string, uploadId: string, partNumber: number, data: Buffer, signal: AbortSignal): Promise<string> {
    const response = await this.#http.request({
      method: 'PUT',
      objectName,
      query: `partNumber=${partNumber}&uploadId=${uriEscape(uploadId)}`,
      body: data,
      expect: [200],
      signal,
    });
    await discardBody(response);
    const etag = normalizeEtag(header(response, 'etag'));
    if (!etag) throw new Error(`no ETag in the answer to UploadPart ${partNumber}`);
    return etag;
  }

  async #completeUpload(
    objectName: string,
    uploadId: string,
    parts: ReadonlyArray<{ partNumber: number; etag: string }>,
    conditionHeaders: Record<string, string>,
  ): Promise<string> {
    const { response, text } = await this.#http.requestText({
      method: 'POST',
      objectName,
      query: `uploadId=${uriEscape(uploadId)}`,
      headers: { ...conditionHeaders, 'content-type': 'application/xml' },
      body: completeMultipartBody(parts),
      expect: [200],
    });
    // S3 answers 200 as soon as it starts combining the parts; a failure after that comes as an <Error> body.
    const failed = parseErrorDocument(text);
    if (failed) throw new S3ServiceError(200, failed.code, failed.message, failed.requestId);
    const etag = normalizeEtag(header(response, 'etag') ?? tagText(text, 'ETag'));
    if (!etag) throw new Error('no ETag in the answer to CompleteMultipartUpload');
    return etag;
  }

  /**
   * Sends the request that makes a put visible (the single PUT, or CompleteMultipartUpload) with the retry rules of
   * the contract: an unconditional one is retried on any transient failure; a conditional one only when the server
   * certainly did not act. When an earlier try may have taken effect, the object is read: if its ETag is the one this
   * put produces (`expectedEtag`), the put succeeded; if that cannot be told, the put reports UNAVAILABLE.
   */
  async #commit(plan: PutPlan, expectedEtag: string | undefined, send: () => Promise<string>): Promise<string> {
    let uncertain = false;
    let attempts = 0;
    try {
      return await retry(
        async () => {
          attempts++;
          try {
            return await send();
          } catch (error) {
            const kind = retryClass(error);
            if (uncertain || (kind === 'ambiguous' && plan.condition)) {
              const current = expectedEtag === undefined ? undefined : await this.#headRaw(plan.objectName).then((o) => o.etag, () => undefined);
              if (current !== undefined && current === expectedEtag) return current;
              if (plan.condition || isNoSuchUpload(error)) throw this.#unknownOutcome(plan, error);
            }
            if (kind === 'ambiguous') uncertain = true;
            throw error;
          }
        },
        {
          ...this.#retryTiming(),
          retryable: (error) => !isWsdError(error) && (plan.condition ? retryClass(error) === 'safe' : retryClass(error) !== 'never'),
        },
      );
    } catch (error) {
      throw toS3Error(error, this.#context(plan.operation, plan.condition, attempts));
    }
  }

  #unknownOutcome(plan: PutPlan, error: unknown): WsdError {
    const reason = toS3Error(error, this.#context(plan.operation, plan.condition)).message;
    return new WsdError('UNAVAILABLE', `${reason}; whether the write took effect is unknown (read the object to find out)`, { cause: error });
  }

  /** Aborts an upload; if the server cannot be reached now, keeps trying in the background for a while. */
  async #abortUpload(objectName: string, uploadId: string): Promise<void> {
    try {
      await retry(() => this.#abortRequest(objectName, uploadId), { ...this.#retryTiming(), attempts: 2, retryable: (e) => retryClass(e) !== 'never' });
    } catch (error) {
      this.#log?.warn('storage/s3: could not abort a multipart upload; trying again in the background', {
        bucket: this.bucket,
        object: objectName,
        error: (error as Error).message,
      });
      this.#abortLater(objectName, uploadId, Date.now() + abortRetryWindowMs, 1000);
    }
  }

  #abortLater(objectName: string, uploadId: string, deadline: number, delayMs: number): void {
    const timer = setTimeout(() => {
      this.#abortRequest(objectName, uploadId).then(
        () => this.#pendingAborts.delete(uploadId),
        () => {
          if (!this.#pendingAborts.has(uploadId)) return;
          if (Date.now() + delayMs > deadline) {
            this.#pendingAborts.delete(uploadId);
            this.#log?.warn('storage/s3: gave up aborting a multipart upload (a lifecycle rule or the next start cleans it up)', { object: objectName });
          } else this.#abortLater(objectName, uploadId, deadline, Math.min(delayMs * 2, 10_000));
        },
      );
    }, delayMs * (0.5 + Math.random() / 2));
    timer.unref();
    this.#pendingAborts.set(uploadId, { objectName, timer });
  }

  /** One AbortMultipartUpload; an upload that is gone already (completed, aborted) counts as aborted. */
  async #abortRequest(objectName: string, uploadId: string, signal?: AbortSignal): Promise<void> {
    try {
      await discardBody(await this.#http.request({ method: 'DELETE', objectName, query: `uploadId=${uriEscape(uploadId)}`, expect: [204, 200], signal }));
    } catch (error) {
      if (!isNoSuchUpload(error)) throw error;
    }
  }

  /** Multipart uploads in progress (or abandoned) under `prefix`, keys relative to the configured prefix. */
  async listIncompleteUploads(prefix = ''): Promise<IncompleteUpload[]> {
    const all: IncompleteUpload[] = [];
    for await (const upload of this.#incompleteUploads(this.#prefix + prefix)) all.push({ ...upload, key: upload.key.slice(this.#prefix.length) });
    return all;
  }

  /** Aborts every upload under the configured prefix begun before `before`; resolves with how many. */
  async abortUploadsStartedBefore(before: Date, signal?: AbortSignal): Promise<number> {
    let aborted = 0;
    for await (const upload of this.#incompleteUploads(this.#prefix, signal)) {
      if (upload.initiated.getTime() >= before.getTime()) continue;
      await this.#retrying('abort an abandoned upload', () => this.#abortRequest(upload.key, upload.uploadId, signal), { signal });
      aborted++;
    }
    if (aborted > 0) this.#log?.info('storage/s3: aborted abandoned multipart uploads', { count: aborted });
    return aborted;
  }

  /**
   * Uploads whose key starts with `fullPrefix`. The bucket's whole list is read and filtered here: MinIO matches the
   * `prefix` of ListMultipartUploads only against whole keys (a folder prefix lists nothing). Uploads in progress are
   * few, and this runs at start and in tests only.
   */
  async *#incompleteUploads(fullPrefix: string, signal?: AbortSignal): AsyncGenerator<IncompleteUpload> {
    let marker: { keyMarker: string; uploadIdMarker: string } | undefined;
    do {
      const query = [
        'encoding-type=url',
        ...(marker ? [`key-marker=${uriEscape(marker.keyMarker)}`, `upload-id-marker=${uriEscape(marker.uploadIdMarker)}`] : []),
        'uploads',
      ].join('&');
      const page = await this.#retrying(
        'list multipart uploads',
        async () => parseListMultipartUploads((await this.#http.requestText({ method: 'GET', query, expect: [200], signal })).text),
        { signal },
      );
      yield* page.uploads.filter((upload) => upload.key.startsWith(fullPrefix));
      marker = page.next;
    } while (marker);
  }

  async get({ key, range, signal }: GetOptions): Promise<GetResult> {
    const objectName = this.#objectName(key);
    const operation = `get ${key}`;
    const offset = range?.offset ?? 0;
    const length = range?.length;
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new WsdError('INVALID_ARGUMENT', `range offset ${offset} must be a non-negative integer`, { field: 'range.offset' });
    }
    if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) {
      throw new WsdError('INVALID_ARGUMENT', `range length ${length} must be a non-negative integer`, { field: 'range.length' });
    }
    this.#throwIfCancelled(signal, operation);
    if (length === 0) {
      // HTTP cannot ask for zero bytes; the object's metadata answers everything.
      const info = await this.head({ key, signal });
      if (offset > 0 && offset >= info.size) throw outsideRange(key, offset, info.size);
      return { body: Readable.from([]), size: info.size, contentLength: 0, etag: info.etag };
    }
    const last = length === undefined ? undefined : offset + length - 1;
    const opened = await this.#retrying(operation, () => this.#openRead(objectName, key, offset, last, undefined, signal), { signal });
    return {
      body: Readable.from(this.#resumingBody(opened, objectName, key, signal), { objectMode: false }),
      size: opened.size,
      contentLength: opened.contentLength,
      etag: opened.etag,
    };
  }

  /** One GET of `[offset, last]` (inclusive; to the end when `last` is undefined), pinned to `ifMatch` when given. */
  async #openRead(objectName: string, key: string, offset: number, last: number | undefined, ifMatch: string | undefined, signal: AbortSignal | undefined): Promise<OpenedRead> {
    const headers: Record<string, string> = {};
    if (offset > 0 || last !== undefined) headers.range = `bytes=${offset}-${last ?? ''}`;
    if (ifMatch !== undefined) headers['if-match'] = `"${ifMatch}"`;
    let response: IncomingMessage;
    try {
      response = await this.#http.request({ method: 'GET', objectName, headers, expect: [200, 206], signal, streaming: true });
    } catch (error) {
      if (error instanceof S3ServiceError && error.status === 416) {
        // Only an empty object refuses a range from 0: read it whole.
        if (offset === 0) return this.#openRead(objectName, key, 0, undefined, ifMatch, signal);
        throw outsideRange(key, offset, undefined);
      }
      throw error;
    }
    const etag = normalizeEtag(header(response, 'etag'));
    const length = Number(header(response, 'content-length') ?? NaN);
    if (response.statusCode === 206) {
      const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(response, 'content-range') ?? '');
      if (!match || match[3] === '*') {
        response.destroy();
        throw new Error(`unexpected Content-Range ${header(response, 'content-range')}`);
      }
      return { response, etag, size: Number(match[3]), contentLength: Number(match[2]) - Number(match[1]) + 1, skip: 0 };
    }
    // 200: the whole object, also when a server ignored the Range header; the body is cut here then.
    if (offset > 0 && offset >= length) {
      response.destroy();
      throw outsideRange(key, offset, length);
    }
    const end = last === undefined ? length : Math.min(length, last + 1);
    return { response, etag, size: length, contentLength: end - offset, skip: offset };
  }

  /**
   * The body of a get: the response's bytes, watched for stalls (`requestTimeout` without a byte while the reader
   * waits), and resumed with a ranged GET pinned to the etag when the transfer breaks.
   */
  async *#resumingBody(opened: OpenedRead, objectName: string, key: string, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
    const operation = `get ${key}`;
    let current = opened;
    let delivered = 0;
    let failures = 0;
    const firstByte = opened.contentLength === 0 ? 0 : this.#firstByteOf(opened);
    try {
      for (;;) {
        try {
          let skip = current.skip;
          for await (const chunk of idleWatched(current.response, this.#config.requestTimeout)) {
            let piece = chunk;
            if (skip > 0) {
              const dropped = Math.min(skip, piece.length);
              piece = piece.subarray(dropped);
              skip -= dropped;
            }
            const room = opened.contentLength - delivered;
            if (piece.length > room) piece = piece.subarray(0, room);
            if (piece.length === 0) continue;
            delivered += piece.length;
            failures = 0;
            yield piece;
            if (delivered === opened.contentLength) return;
          }
          if (delivered >= opened.contentLength) return;
          throw Object.assign(new Error('the connection closed before the whole object arrived'), { code: 'ECONNRESET' });
        } catch (error) {
          current.response.destroy();
          if (signal?.aborted) throw this.#cancelled(operation, error);
          if (retryClass(error) === 'never' || ++failures >= this.#config.retry.attempts) {
            throw toS3Error(error, this.#context(`${operation} (after ${delivered} of ${opened.contentLength} bytes)`, undefined, failures));
          }
          const { initialDelay, maxDelay } = this.#config.retry;
          // Cancellable: a caller that gives up must not wait out the backoff.
          await sleep(Math.min(maxDelay, initialDelay * 2 ** (failures - 1)) * (0.5 + Math.random() / 2), undefined, signal ? { signal } : {}).catch((error: unknown) => {
            throw this.#cancelled(operation, error);
          });
          const from = firstByte + delivered;
          const last = firstByte + opened.contentLength - 1;
          try {
            current = await this.#openRead(objectName, key, from, last, opened.etag, signal);
          } catch (reopenError) {
            if (reopenError instanceof S3ServiceError && reopenError.status === 412) {
              throw new WsdError('UNAVAILABLE', `storage/s3: ${operation}: the object was replaced while it was read; read it again`, { cause: reopenError });
            }
            throw isWsdError(reopenError) ? reopenError : toS3Error(reopenError, this.#context(operation));
          }
        }
      }
    } finally {
      current.response.destroy();
    }
  }

  #firstByteOf(opened: OpenedRead): number {
    if (opened.response.statusCode === 206) return Number(/^bytes (\d+)-/.exec(header(opened.response, 'content-range') ?? '')?.[1] ?? 0);
    return opened.skip;
  }

  async head({ key, signal }: KeyOptions): Promise<ObjectInfo> {
    const objectName = this.#objectName(key);
    this.#throwIfCancelled(signal, `head ${key}`);
    const info = await this.#retrying(`head ${key}`, () => this.#headRaw(objectName, signal), { signal });
    return { key, ...info };
  }

  async #headRaw(objectName: string, signal?: AbortSignal): Promise<{ size: number; modifiedAt: Date; etag: string }> {
    const response = await this.#http.request({ method: 'HEAD', objectName, expect: [200], signal });
    await discardBody(response);
    return {
      size: Number(header(response, 'content-length') ?? 0),
      modifiedAt: new Date(header(response, 'last-modified') ?? 0),
      etag: normalizeEtag(header(response, 'etag')),
    };
  }

  async *list({ prefix, signal }: ListOptions): AsyncIterable<ObjectInfo> {
    if (typeof prefix !== 'string') throw new WsdError('INVALID_ARGUMENT', 'list prefix must be a string', { field: 'prefix' });
    const fullPrefix = this.#prefix + prefix;
    // No key can be longer, so nothing can match (S3 would refuse the request instead).
    if (Buffer.byteLength(fullPrefix) > 1024) return;
    let token: string | undefined;
    do {
      this.#throwIfCancelled(signal, `list ${prefix}`);
      const pageToken = token;
      const page = await this.#retrying(`list ${prefix}`, () => this.#listPage(fullPrefix, pageToken, 1000, signal), { signal });
      for (const object of page.objects) {
        if (!object.key.startsWith(this.#prefix)) continue;
        yield { key: object.key.slice(this.#prefix.length), size: object.size, modifiedAt: object.modifiedAt, etag: object.etag };
      }
      token = page.continuationToken;
    } while (token);
  }

  async #listPage(fullPrefix: string, token: string | undefined, maxKeys: number, signal: AbortSignal | undefined): Promise<ListPage> {
    const query = [
      ...(token ? [`continuation-token=${uriEscape(token)}`] : []),
      'encoding-type=url',
      'list-type=2',
      `max-keys=${maxKeys}`,
      `prefix=${uriEscape(fullPrefix)}`,
    ].join('&');
    return parseListObjectsV2((await this.#http.requestText({ method: 'GET', query, expect: [200], signal })).text);
  }

  async delete({ key, signal }: KeyOptions): Promise<void> {
    const objectName = this.#objectName(key);
    this.#throwIfCancelled(signal, `delete ${key}`);
    await this.#retrying(
      `delete ${key}`,
      async () => {
        try {
          await discardBody(await this.#http.request({ method: 'DELETE', objectName, expect: [204, 200], signal }));
        } catch (error) {
          // S3 answers 204 for a missing key; some compatible stores answer 404.
          if (error instanceof S3ServiceError && error.code === 'NoSuchKey') return;
          throw error;
        }
      },
      { signal },
    );
  }

  async presignGet({ key, expiresInSeconds, signal }: KeyOptions & { expiresInSeconds: number }): Promise<string> {
    const objectName = this.#objectName(key);
    if (!Number.isSafeInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > maxPresignSeconds) {
      throw new WsdError('INVALID_ARGUMENT', `expiresInSeconds ${expiresInSeconds} must be a whole number of seconds from 1 to ${maxPresignSeconds} (7 days)`, {
        field: 'expiresInSeconds',
      });
    }
    this.#throwIfCancelled(signal, `presign ${key}`);
    try {
      return await this.#http.presignGet(objectName, expiresInSeconds);
    } catch (error) {
      throw toS3Error(error, this.#context(`presign ${key}`));
    }
  }

  /**
   * Server-side copy: one CopyObject up to 5 GiB; larger objects part by part (UploadPartCopy, every part pinned to
   * the source's ETag so the copy is one version), aborted on failure like any multipart upload.
   */
  async copy({ from, to, signal }: { from: string; to: string; signal?: AbortSignal }): Promise<void> {
    const source = this.#objectName(from, 'from');
    const target = this.#objectName(to, 'to');
    const operation = `copy ${from} to ${to}`;
    this.#throwIfCancelled(signal, operation);
    const info = await this.#retrying(operation, () => this.#headRaw(source, signal), { signal });
    // S3 refuses to copy an object onto itself unchanged; the copy is there already.
    if (source === target) return;
    const copySource = `/${this.bucket}/${uriEscape(source).replace(/%2F/g, '/')}`;
    if (info.size <= this.#maxSingleCopyBytes) {
      await this.#retrying(
        operation,
        async () => {
          const { text } = await this.#http.requestText({ method: 'PUT', objectName: target, headers: { 'x-amz-copy-source': copySource }, expect: [200], signal });
          const failed = parseErrorDocument(text);
          if (failed) throw new S3ServiceError(200, failed.code, failed.message, failed.requestId);
        },
        { signal },
      );
      return;
    }
    const uploadId = await this.#retrying(
      operation,
      async () => tagText((await this.#http.requestText({ method: 'POST', objectName: target, query: 'uploads', expect: [200], signal })).text, 'UploadId') ?? '',
      { signal },
    );
    try {
      const ranges: Array<{ partNumber: number; first: number; last: number }> = [];
      for (let first = 0, partNumber = 1; first < info.size; first += this.#copyPartBytes, partNumber++) {
        ranges.push({ partNumber, first, last: Math.min(info.size, first + this.#copyPartBytes) - 1 });
      }
      const etags: string[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(this.#config.concurrency, ranges.length) }, async () => {
          while (next < ranges.length) {
            const { partNumber, first, last } = ranges[next++]!;
            etags[partNumber - 1] = await this.#retrying(
              `${operation}: part ${partNumber}`,
              async () => {
                const { text } = await this.#http.requestText({
                  method: 'PUT',
                  objectName: target,
                  query: `partNumber=${partNumber}&uploadId=${uriEscape(uploadId)}`,
                  headers: { 'x-amz-copy-source': copySource, 'x-amz-copy-source-range': `bytes=${first}-${last}`, 'x-amz-copy-source-if-match': `"${info.etag}"` },
                  expect: [200],
                  signal,
                });
                const failed = parseErrorDocument(text);
                if (failed) throw new S3ServiceError(200, failed.code, failed.message, failed.requestId);
                return normalizeEtag(tagText(text, 'ETag'));
              },
              { signal },
            );
          }
        }),
      );
      const parts = etags.map((etag, i) => ({ partNumber: i + 1, etag }));
      await this.#retrying(operation, () => this.#completeUpload(target, uploadId, parts, {}));
    } catch (error) {
      await this.#abortUpload(target, uploadId);
      if (isWsdError(error) && error.cause instanceof S3ServiceError && error.cause.status === 412) {
        throw new WsdError('UNAVAILABLE', `storage/s3: ${operation}: the source was replaced while it was copied; copy again`, { cause: error });
      }
      throw error;
    }
  }

  /** `prefix + key`, after checking the key (the contract's rules, and S3's 1024-byte limit with the prefix). */
  #objectName(key: string, field = 'key'): string {
    assertValidKey(key, field);
    const objectName = this.#prefix + key;
    if (Buffer.byteLength(objectName) > maxKeyBytes) {
      throw new WsdError('INVALID_ARGUMENT', `${field} ${JSON.stringify(key.slice(0, 40))}…: with the prefix ${JSON.stringify(this.#prefix)} longer than S3's ${maxKeyBytes} bytes`, { field });
    }
    return objectName;
  }

  /** Reads the next part; a failing body is the put's failure (wrapped), an abort is CANCELLED. */
  async #readPart(reader: PartReader, size: number, plan: PutPlan, signal: AbortSignal | undefined): Promise<Part> {
    try {
      return await abortable(reader.next(size), signal);
    } catch (error) {
      if (plan.signal?.aborted) throw this.#cancelled(plan.operation, error);
      if (isWsdError(error)) throw error;
      throw new WsdError('INTERNAL', `storage/s3: ${plan.operation}: the body failed: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Runs one request (or a few that belong together) with retries of transient failures; maps the final failure. */
  async #retrying<T>(operation: string, fn: () => Promise<T>, options: { signal?: AbortSignal | undefined } = {}): Promise<T> {
    let attempts = 0;
    try {
      return await retry(
        () => {
          attempts++;
          return fn();
        },
        { ...this.#retryTiming(), retryable: (error) => !isWsdError(error) && retryClass(error) !== 'never', ...(options.signal ? { signal: options.signal } : {}) },
      );
    } catch (error) {
      if (options.signal?.aborted) throw this.#cancelled(operation, error);
      throw toS3Error(error, this.#context(operation, undefined, attempts));
    }
  }

  #retryTiming() {
    const { attempts, initialDelay, maxDelay } = this.#config.retry;
    // Waits between half and all of their nominal length; they keep the process alive: someone awaits the request.
    return { attempts, initialDelayMs: initialDelay, maxDelayMs: maxDelay, jitter: 0.5, keepAlive: true };
  }

  #context(operation: string, condition?: 'ifNoneMatch' | 'ifMatch' | undefined, attempts?: number) {
    return { operation, bucket: this.bucket, endpoint: this.endpoint.url, condition, attempts };
  }

  #throwIfCancelled(signal: AbortSignal | undefined, operation: string): void {
    if (signal?.aborted) throw this.#cancelled(operation, signal.reason);
  }

  #cancelled(operation: string, cause: unknown): WsdError {
    return new WsdError('CANCELLED', `storage/s3: ${operation}: cancelled`, { cause });
  }
}

interface PutPlan {
  key: string;
  objectName: string;
  operation: string;
  condition: 'ifNoneMatch' | 'ifMatch' | undefined;
  conditionHeaders: Record<string, string>;
  contentType: string | undefined;
  sizeHint: number | undefined;
  signal: AbortSignal | undefined;
}

interface OpenedRead {
  response: IncomingMessage;
  etag: string;
  /** Size of the whole object. */
  size: number;
  /** Bytes the get's body yields. */
  contentLength: number;
  /** Bytes to drop from the front of `response` (a server that ignored the Range header). */
  skip: number;
}

function outsideRange(key: string, offset: number, size: number | undefined): WsdError {
  return new WsdError('INVALID_ARGUMENT', `range offset ${offset} is outside object ${key}${size === undefined ? '' : ` of ${size} bytes`}`, { field: 'range.offset' });
}

function isNoSuchUpload(error: unknown): boolean {
  return error instanceof S3ServiceError && error.code === 'NoSuchUpload';
}

/**
 * Yields the response's chunks; destroys it when the server sends nothing for `ms` while a chunk is awaited. Time
 * the reader spends elsewhere (backpressure) does not count. One timer per response, re-armed, not one per chunk.
 */
async function* idleWatched(response: IncomingMessage, ms: number): AsyncGenerator<Buffer> {
  const iterator = (response as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  let waitingSince: number | undefined;
  const timer = setTimeout(function check() {
    const idle = waitingSince === undefined ? 0 : Date.now() - waitingSince;
    if (idle >= ms) response.destroy(new S3TimeoutError(ms));
    else timer.refresh();
  }, ms);
  timer.unref();
  try {
    for (;;) {
      waitingSince = Date.now();
      const next = await iterator.next();
      waitingSince = undefined;
      if (next.done) return;
      yield next.value;
    }
  } finally {
    clearTimeout(timer);
  }
}

/** `promise`, or an AbortError as soon as `signal` aborts. */
async function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  signal.throwIfAborted();
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
