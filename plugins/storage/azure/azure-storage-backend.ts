import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { BlockBlobClient, ContainerClient } from '@azure/storage-blob';
import {
  WsdError,
  assertValidKey,
  assertValidPutOptions,
  isAbortError,
  isWsdError,
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
import { maxBlockBytes, type AzureStorageConfig } from './azure-config.js';
import { connectAzure, readAzureCredentials, type AzureConnection } from './azure-credentials.js';
import { mapAzureError } from './azure-errors.js';
import { blocksOf } from './blocks-of.js';
import { resumableDownload } from './resumable-download.js';
import { inUtf8Order } from './utf8-order.js';

export interface AzureStorageBackendOptions {
  /** Makes relative file paths of the config absolute (the kernel: relative to the config file). Default: the cwd. */
  resolvePath?: (p: string) => string;
  /** Where AZURE_STORAGE_* credentials are looked up. Default: `process.env`. */
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  /** Wait before the first retry; doubles up to 8 s, with jitter. Default 500 ms. */
  retryDelayMs?: number;
}

/** Metadata every put sets to a fresh random value: after a lost answer it tells whether the blob is this put's. */
export const putIdMetadata = 'wsdput';
/** Azure caps a blob at 50 000 committed blocks. */
const maxBlocks = 50_000;
/** Block size doubles every this many blocks, so a stream much longer than its sizeHint still fits in 50 000. */
const blocksPerSize = 10_000;
/** Azure's longest blob name, in characters. */
const maxNameLength = 1024;
/** Listing page size (Azure's maximum is 5000; 1000 matches the other object stores). */
const pageSize = 1000;

/**
 * `wsd.storage.v1` on Azure Blob Storage (block blobs), with `@azure/storage-blob`.
 *
 * - put: a body up to one block is one Put Blob; a longer one is staged in blocks (`concurrency` at a time, block IDs
 *   unique to this put) and committed with Put Block List. Conditions go on that single committing request
 *   (`If-None-Match: *` / `If-Match: <etag>`), so the check and the write are one atomic step on the service and a
 *   refused or failed put never shows a partial blob. Staged blocks of a put that failed are removed when the key has
 *   no committed blob (see `#discardStaged`).
 * - get: ranged download pinned to the first response's etag; a transfer broken midway resumes with If-Match.
 * - list: pages of 1000 by prefix, re-ordered from Azure's UTF-16 order to UTF-8 order ({@link inUtf8Order}).
 * - retries: the SDK's own retry policy is off; every request gets `requestTimeout` and up to `retries` retries with
 *   jittered exponential backoff, decided here, where it is known whether a request may be repeated. A conditional
 *   commit whose answer was lost is retried too, and a refusal after that is resolved by reading the blob's
 *   `wsdput` metadata: if it is this put's own id, the first attempt succeeded.
 */
export class AzureStorageBackend implements StorageBackend {
  readonly capabilities: StorageCapabilities = { presign: false, conditionalCreate: true, conditionalReplace: true, serverSideCopy: false };
  readonly config: AzureStorageConfig;
  readonly #resolvePath: (p: string) => string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #log: Logger | undefined;
  readonly #retryDelayMs: number;
  #connection: (AzureConnection & { container: ContainerClient }) | undefined;

  readonly container: string;

  constructor(config: AzureStorageConfig, options: AzureStorageBackendOptions = {}) {
    if (!config.container) {
      throw new WsdError('INVALID_ARGUMENT', 'storage.azure.container: required when storage.plugin is azure', { field: 'storage.azure.container' });
    }
    this.config = config;
    this.container = config.container;
    this.#resolvePath = options.resolvePath ?? ((p) => path.resolve(p));
    this.#env = options.env ?? process.env;
    this.#log = options.log;
    this.#retryDelayMs = options.retryDelayMs ?? 500;
  }

  /**
   * Reads the credentials, and checks with one listing request (which needs only the list permission the backend
   * needs anyway) that the container exists and the credentials are accepted; creates the container when it is
   * missing and `createBucket` is set. Fails with the reason otherwise: FAILED_PRECONDITION for a missing container,
   * PERMISSION_DENIED for refused credentials, UNAVAILABLE when the endpoint cannot be reached.
   */
  async start(): Promise<void> {
    const source = await readAzureCredentials(this.config, { resolvePath: this.#resolvePath, env: this.#env });
    const connection = await connectAzure(this.config, source, { resolvePath: this.#resolvePath });
    const container = connection.service.getContainerClient(this.container);
    this.#connection = { ...connection, container };
    try {
      await this.#checkContainer(container);
    } catch (error) {
      this.#connection = undefined;
      const where = `container "${this.container}" at ${connection.endpoint} (${connection.credentials})`;
      const reason = (error as Error).message.replace(/^storage\/azure [^:]*: /, '');
      if (isWsdError(error, 'FAILED_PRECONDITION')) {
        const tag = /\((\d{3} \w+)\)$/.exec(reason)?.[1] ?? 'missing';
        throw new WsdError(
          'FAILED_PRECONDITION',
          `storage/azure: container "${this.container}" does not exist at ${connection.endpoint} (${tag}; ${connection.credentials}); create it, or set createBucket: true`,
        );
      }
      throw new WsdError(isWsdError(error) ? error.code : 'INTERNAL', `storage/azure: cannot use ${where}: ${reason}`);
    }
    if (this.config.abortUploadsOlderThan > 0) {
      const cutoff = new Date(Date.now() - this.config.abortUploadsOlderThan);
      this.#abandonedUploads = this.discardAbandonedUploads(cutoff, this.#stopping.signal).catch((error: unknown) => {
        this.#log?.warn('could not look for abandoned uploads', { reason: (error as Error).message });
        return 0;
      });
    }
  }

  /** One listing request of one name: needs only the list permission the backend needs anyway. */
  async #checkContainer(container: ContainerClient): Promise<void> {
    try {
      await this.#withRetries('start', undefined, () =>
        this.#once('start', undefined, (abortSignal) => container.listBlobsFlat({ prefix: this.config.prefix, abortSignal }).byPage({ maxPageSize: 1 }).next()),
      );
    } catch (error) {
      if (!isWsdError(error, 'FAILED_PRECONDITION') || !this.config.createBucket) throw error;
      await this.#withRetries('create container', undefined, () =>
        this.#once('create container', undefined, (abortSignal) => container.createIfNotExists({ abortSignal })),
      );
      this.#log?.info('storage container created', { container: this.container, endpoint: this.#connection?.endpoint });
    }
  }

  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#abandonedUploads;
    this.#connection = undefined;
  }

  readonly #stopping = new AbortController();
  #abandonedUploads: Promise<number> = Promise.resolve(0);

  /** Resolves once the start-up removal of abandoned uploads is over, with how many it removed (tests). */
  get abandonedUploadsDiscarded(): Promise<number> {
    return this.#abandonedUploads;
  }

  /**
   * Removes blobs under the prefix that hold staged blocks but were never committed and were last touched before
   * `olderThan`: what puts of new keys leave when the daemon or the service dies midway. Such a blob is listed only
   * with `include=uncommittedblobs`, as 0 bytes, and a HEAD does not find it; each candidate is checked that way and
   * deleted with `If-Unmodified-Since: 1970`, which a committed blob always fails, so no object can be lost to a
   * race with a writer. Blocks staged onto a blob that exists cannot be found by listing; Azure drops them with the
   * key's next commit or after 7 days. Returns how many blobs were removed.
   */
  async discardAbandonedUploads(olderThan: Date, signal?: AbortSignal): Promise<number> {
    const container = this.#container();
    const what = 'look for abandoned uploads';
    const candidates: string[] = [];
    let marker: string | undefined;
    do {
      const page = await this.#withRetries(what, signal, () =>
        this.#once(what, signal, (abortSignal) =>
          container.listBlobsFlat({ prefix: this.config.prefix, includeUncommitedBlobs: true, abortSignal }).byPage({ continuationToken: marker, maxPageSize: pageSize }).next(),
        ),
      );
      if (page.done) break;
      for (const item of page.value.segment.blobItems) {
        if (item.properties.contentLength === 0 && item.properties.lastModified < olderThan) candidates.push(item.name);
      }
      marker = page.value.continuationToken || undefined;
    } while (marker);
    let removed = 0;
    for (const name of candidates) {
      const blob = container.getBlockBlobClient(name);
      const committed = await this.#once(what, signal, (abortSignal) => blob.getProperties({ abortSignal })).then(
        () => true,
        (error: unknown) => !isWsdError(error, 'NOT_FOUND'),
      );
      if (committed) continue;
      const deleted = await this.#once(what, signal, (abortSignal) => blob.delete({ abortSignal, conditions: { ifUnmodifiedSince: new Date(0) } })).then(
        () => true,
        () => false,
      );
      if (deleted) {
        removed++;
        this.#log?.info('abandoned upload removed', { blob: name });
      }
    }
    return removed;
  }

  async put({ key, body, ifNoneMatch, ifMatch, sizeHint, contentType, signal }: PutOptions): Promise<PutResult> {
    const name = this.#blobName(key);
    assertValidPutOptions({ ifNoneMatch, ifMatch, sizeHint }, this.capabilities);
    const what = `put ${JSON.stringify(key)}`;
    const blob = this.#container().getBlockBlobClient(name);
    return await this.#cancellable(what, signal, async () => {
      signal?.throwIfAborted();
      const putId = randomBytes(12).toString('hex');
      const write = {
        conditions: ifNoneMatch ? { ifNoneMatch: '*' } : ifMatch !== undefined ? { ifMatch } : {},
        metadata: { [putIdMetadata]: putId },
        blobHTTPHeaders: contentType ? { blobContentType: contentType } : {},
      };
      const condition = ifNoneMatch ? 'ifNoneMatch' : ifMatch !== undefined ? 'ifMatch' : undefined;
      const base = Math.min(maxBlockBytes, Math.max(this.config.blockSize, Math.ceil((sizeHint ?? 0) / (2 * blocksPerSize))));
      const sizeAt = (index: number) => Math.min(maxBlockBytes, base * 2 ** Math.floor(index / blocksPerSize));
      // Stops the uploads in flight when the caller cancels (blocks it abandons are swept later: README).
      const uploads = new AbortController();
      const onAbort = () => uploads.abort();
      signal?.addEventListener('abort', onAbort, { once: true });
      const blocks = blocksOf(body, sizeAt, uploads.signal)[Symbol.asyncIterator]();
      const nextBlock = async () => {
        try {
          return await blocks.next();
        } catch (error) {
          if (signal?.aborted || isWsdError(error)) throw error;
          throw new WsdError('INTERNAL', `storage/azure ${what}: reading the body failed: ${(error as Error)?.message ?? String(error)}`, { cause: error });
        }
      };
      const staged: string[] = [];
      try {
        const first = await nextBlock();
        const second = await nextBlock();
        if (second.done) {
          const data = first.value as Buffer;
          const result = await this.#conditionalWrite(what, signal, condition, blob, putId, (abortSignal) =>
            blob.upload(data, data.length, { ...write, abortSignal }),
          );
          return { size: data.length, etag: result.etag };
        }
        let size = 0;
        let failure: unknown;
        const inFlight = new Set<Promise<void>>();
        const stage = (block: Buffer) => {
          const id = blockId(putId, staged.length);
          staged.push(id);
          size += block.length;
          const what_ = `${what}: block ${staged.length - 1}`;
          const upload: Promise<void> = this.#withRetries(what_, uploads.signal, () =>
            this.#once(what_, uploads.signal, (abortSignal) => blob.stageBlock(id, block, block.length, { abortSignal })),
          ).then(
            () => {},
            (error: unknown) => {
              // No abort of the other blocks in flight: a request abandoned by the client may still land on the
              // service after the clean-up below, leaving an uncommitted block behind. They end on their own.
              failure ??= error;
            },
          );
          inFlight.add(upload);
          void upload.finally(() => inFlight.delete(upload));
        };
        try {
          // The first two blocks are read already (to tell a one-request body from a longer one).
          const pending: Buffer[] = [first.value as Buffer, second.value];
          for (;;) {
            const next = pending.shift() ?? (await nextBlock()).value;
            if (next === undefined || failure !== undefined) break;
            if (staged.length >= maxBlocks) {
              throw new WsdError('RESOURCE_EXHAUSTED', `storage/azure ${what}: the body is longer than ${maxBlocks} blocks (pass sizeHint or raise blockSize)`);
            }
            // A block is read ahead while the slots are full, so a slot that frees is refilled at once.
            while (inFlight.size >= this.config.concurrency) await Promise.race(inFlight);
            if (failure !== undefined) break;
            stage(next);
          }
        } catch (error) {
          failure ??= error; // as above: the blocks in flight finish before the clean-up
        }
        await Promise.all(inFlight);
        if (failure !== undefined) throw failure;
        const result = await this.#conditionalWrite(what, signal, condition, blob, putId, (abortSignal) =>
          blob.commitBlockList(staged, { ...write, abortSignal }),
        );
        return { size, etag: result.etag };
      } catch (error) {
        await blocks.return?.(undefined).catch(() => {});
        if (staged.length > 0) await this.#discardStaged(blob, putId);
        throw error;
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
    });
  }

  /**
   * The one request that makes a put visible (Put Blob, or Put Block List), retried on transient failures. Without a
   * condition a retry is harmless (the same bytes land again). With one, a retry after a failure that may have reached
   * the service can be refused because the first attempt succeeded; such a refusal is checked against the blob's
   * `wsdput` metadata: this put's id means it did happen. If another writer's version is there by then, whether
   * this put happened before it cannot be told, and the put fails UNAVAILABLE (the caller re-reads), never with a
   * refusal it cannot vouch for.
   */
  async #conditionalWrite(
    what: string,
    signal: AbortSignal | undefined,
    condition: 'ifNoneMatch' | 'ifMatch' | undefined,
    blob: BlockBlobClient,
    putId: string,
    write: (abortSignal: AbortSignal) => Promise<{ etag?: string }>,
  ): Promise<{ etag: string }> {
    let uncertain: WsdError | undefined;
    return await this.#withRetries(what, signal, async () => {
      try {
        const { etag } = await this.#once(what, signal, write);
        if (!etag) throw new WsdError('INTERNAL', `storage/azure ${what}: the answer carries no ETag`);
        return { etag: quotedEtag(etag) };
      } catch (error) {
        if (condition === undefined || !isWsdError(error)) throw error;
        const refusals = condition === 'ifNoneMatch' ? ['BlobAlreadyExists', 'ConditionNotMet'] : ['ConditionNotMet', 'BlobNotFound'];
        if (!refusals.includes(azureCodes.get(error) ?? '')) {
          if (retryable.has(error)) uncertain = error;
          throw error;
        }
        if (uncertain) {
          const current = await this.#once(`${what}: check`, signal, (abortSignal) => blob.getProperties({ abortSignal })).catch(() => undefined);
          if (current?.metadata?.[putIdMetadata] === putId && current.etag) {
            this.#log?.info('storage put succeeded although its answer was lost', { what });
            return { etag: quotedEtag(current.etag) };
          }
          const now = current ? "another writer's version is there now" : 'the object could not be read to check';
          throw new WsdError(
            'UNAVAILABLE',
            `storage/azure ${what}: an attempt failed after it may have reached the service (${uncertain.message}) and the retry was refused; ${now}, so whether this put happened before it is unknown: read the object again`,
          );
        }
        throw condition === 'ifNoneMatch'
          ? new WsdError('ALREADY_EXISTS', `storage/azure ${what}: the object exists already (ifNoneMatch)`)
          : new WsdError('FAILED_PRECONDITION', `storage/azure ${what}: the object is no longer at the version ifMatch names (it was replaced or deleted)`);
      }
    });
  }

  /**
   * Best effort after a failed put: removes the blocks it staged when the key has no committed blob and no other
   * writer has staged blocks there. The delete carries `If-Unmodified-Since: 1970`, which every committed blob fails,
   * so it can never remove an object — not even one another writer committed a moment ago. When a committed blob
   * exists, its uncommitted blocks cannot be dropped without committing a new version; Azure discards them with the
   * next commit of the key, or after 7 days.
   */
  async #discardStaged(blob: BlockBlobClient, putId: string): Promise<'removed' | 'kept' | 'none'> {
    const what = `discard staged blocks of ${JSON.stringify(blob.name)}`;
    try {
      const list = await this.#once(what, undefined, (abortSignal) => blob.getBlockList('uncommitted', { abortSignal }));
      const blocks = list.uncommittedBlocks ?? [];
      if (blocks.length === 0) return 'none';
      if (!blocks.every((b) => blockIdOwner(b.name) === putId)) return 'kept';
      await this.#once(what, undefined, (abortSignal) => blob.delete({ abortSignal, conditions: { ifUnmodifiedSince: new Date(0) } }));
      return 'removed';
    } catch (error) {
      if (isWsdError(error, 'NOT_FOUND')) return 'none';
      this.#log?.debug('staged blocks left to expire', { what, reason: (error as Error).message });
      return 'kept';
    }
  }

  async get({ key, range, signal }: GetOptions): Promise<GetResult> {
    const name = this.#blobName(key);
    const offset = range?.offset ?? 0;
    const length = range?.length;
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new WsdError('INVALID_ARGUMENT', `range offset ${offset} must be a non-negative integer`, { field: 'range.offset' });
    }
    if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) {
      throw new WsdError('INVALID_ARGUMENT', `range length ${length} must be a non-negative integer`, { field: 'range.length' });
    }
    const what = `get ${JSON.stringify(key)}`;
    const blob = this.#container().getBlobClient(name);
    return await this.#cancellable(what, signal, async () => {
      const empty = async (): Promise<GetResult> => {
        const info = await this.head({ key, signal });
        if (offset > 0 && offset >= info.size) {
          throw new WsdError('INVALID_ARGUMENT', `storage/azure ${what}: range offset ${offset} is at or past the end of the object (${info.size} bytes)`, { field: 'range.offset' });
        }
        return { body: Readable.from([]), size: info.size, contentLength: 0, etag: info.etag };
      };
      // The SDK reads a count of 0 as "to the end".
      if (length === 0) return await empty();
      let response;
      try {
        response = await this.#withRetries(what, signal, () =>
          this.#once(what, signal, (abortSignal) => blob.download(offset, length, { abortSignal, maxRetryRequests: 0 })),
        );
      } catch (error) {
        // An empty blob has no byte 0 to start a range at; that range is still not past its end.
        if (offset === 0 && isWsdError(error, 'INVALID_ARGUMENT')) return await empty();
        if (isWsdError(error, 'INVALID_ARGUMENT')) {
          throw new WsdError('INVALID_ARGUMENT', `storage/azure ${what}: range offset ${offset} is at or past the end of the object`, { field: 'range.offset' });
        }
        throw error;
      }
      const etag = quotedEtag(response.etag!);
      const contentLength = response.contentLength ?? 0;
      const size = totalSize(response.contentRange) ?? contentLength;
      if (offset > 0 && offset >= size) {
        // Azure answers 416 here; Azurite 206 with an empty "bytes 10-9/10".
        response.readableStreamBody?.resume();
        throw new WsdError('INVALID_ARGUMENT', `storage/azure ${what}: range offset ${offset} is at or past the end of the object (${size} bytes)`, { field: 'range.offset' });
      }
      const body = resumableDownload({
        first: response.readableStreamBody!,
        offset,
        length: contentLength,
        stallMs: this.config.requestTimeout,
        maxResumes: this.config.retries,
        signal,
        map: (error) =>
          // The SDK turns a connection that broke mid-body into an AbortError; only the caller's signal means cancel.
          isAbortError(error) && !signal?.aborted ? this.#transient(`${what}: the connection broke while reading`) : this.#mapped(what, error),
        reopen: async (position, remaining) => {
          const rest = await this.#withRetries(what, signal, () =>
            this.#once(what, signal, (abortSignal) => blob.download(position, remaining, { abortSignal, maxRetryRequests: 0, conditions: { ifMatch: etag } })),
          ).catch((error: unknown) => {
            if (isWsdError(error, 'FAILED_PRECONDITION') || isWsdError(error, 'NOT_FOUND')) {
              throw new WsdError('FAILED_PRECONDITION', `storage/azure ${what}: the object was replaced or deleted while it was being read; read it again`);
            }
            throw error;
          });
          return rest.readableStreamBody!;
        },
      });
      return { body, size, contentLength, etag };
    });
  }

  async head({ key, signal }: KeyOptions): Promise<ObjectInfo> {
    const name = this.#blobName(key);
    const what = `head ${JSON.stringify(key)}`;
    const blob = this.#container().getBlobClient(name);
    return await this.#cancellable(what, signal, async () => {
      const properties = await this.#withRetries(what, signal, () => this.#once(what, signal, (abortSignal) => blob.getProperties({ abortSignal })));
      return { key, size: properties.contentLength ?? 0, modifiedAt: properties.lastModified ?? new Date(0), etag: quotedEtag(properties.etag!) };
    });
  }

  async *list({ prefix, signal }: ListOptions): AsyncIterable<ObjectInfo> {
    if (typeof prefix !== 'string') throw new WsdError('INVALID_ARGUMENT', 'prefix must be a string', { field: 'prefix' });
    const container = this.#container();
    yield* inUtf8Order(this.#listPages(container, prefix, signal), (info) => info.key);
  }

  async *#listPages(container: ContainerClient, prefix: string, signal: AbortSignal | undefined): AsyncGenerator<ObjectInfo> {
    const what = `list ${JSON.stringify(prefix)}`;
    const strip = this.config.prefix.length;
    let marker: string | undefined;
    do {
      const page = await this.#cancellable(what, signal, () =>
        this.#withRetries(what, signal, () =>
          this.#once(what, signal, (abortSignal) =>
            container.listBlobsFlat({ prefix: this.#blobName(prefix, { forListing: true }), abortSignal }).byPage({ continuationToken: marker, maxPageSize: pageSize }).next(),
          ),
        ),
      );
      if (page.done) return;
      for (const item of page.value.segment.blobItems) {
        yield { key: item.name.slice(strip), size: item.properties.contentLength ?? 0, modifiedAt: item.properties.lastModified, etag: quotedEtag(item.properties.etag) };
      }
      marker = page.value.continuationToken || undefined;
    } while (marker);
  }

  async delete({ key, signal }: KeyOptions): Promise<void> {
    const name = this.#blobName(key);
    const what = `delete ${JSON.stringify(key)}`;
    const blob = this.#container().getBlobClient(name);
    await this.#cancellable(what, signal, () =>
      this.#withRetries(what, signal, () => this.#once(what, signal, (abortSignal) => blob.deleteIfExists({ abortSignal, deleteSnapshots: 'include' }))),
    );
  }

  /** The blob name of `key`: the configured prefix, then the key. */
  #blobName(key: string, options: { forListing?: boolean } = {}): string {
    if (!options.forListing) assertValidKey(key);
    const name = this.config.prefix + key;
    if (name.length > maxNameLength) {
      throw new WsdError('INVALID_ARGUMENT', `key ${JSON.stringify(key.slice(0, 40))}…: with the prefix it is longer than Azure's ${maxNameLength} characters`, {
        field: 'key',
      });
    }
    return name;
  }

  #container(): ContainerClient {
    if (!this.#connection) throw new WsdError('FAILED_PRECONDITION', 'storage/azure is not started (start() failed or was not called)');
    return this.#connection.container;
  }

  #mapped(what: string, error: unknown) {
    const mapped = mapAzureError(error, { what, container: this.container, endpoint: this.#connection?.endpoint ?? '(not connected)' });
    if (mapped.retryable) retryable.add(mapped.error);
    if (mapped.azureCode) azureCodes.set(mapped.error, mapped.azureCode);
    return mapped;
  }

  #transient(message: string): { error: WsdError; retryable: boolean } {
    const error = new WsdError('UNAVAILABLE', `storage/azure ${message}`);
    retryable.add(error);
    return { error, retryable: true };
  }

  /**
   * One request: `fn` gets a signal that aborts when the caller cancels or `requestTimeout` passes before the answer
   * starts (a download's body may take longer). Failures come out as WsdErrors; retryable ones are marked.
   */
  async #once<T>(what: string, signal: AbortSignal | undefined, fn: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
    signal?.throwIfAborted();
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.config.requestTimeout);
    timer.unref();
    try {
      return await fn(signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal);
    } catch (error) {
      if (signal?.aborted) throw new WsdError('CANCELLED', `storage/azure ${what}: cancelled`);
      if (timeout.signal.aborted) {
        const timedOut = new WsdError('UNAVAILABLE', `storage/azure ${what}: no answer from ${this.#connection?.endpoint} within ${this.config.requestTimeout} ms (requestTimeout)`);
        retryable.add(timedOut);
        throw timedOut;
      }
      throw this.#mapped(what, error).error;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Runs `fn` again after failures marked retryable, up to `retries` times, with jittered exponential backoff. The
   * waits keep the process alive: a short-lived process (a CLI, a test) must not exit with a put half done.
   */
  async #withRetries<T>(what: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    return await this.#retry(what, signal, fn);
  }

  async #retry<T>(what: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    return await retry(fn, {
      attempts: this.config.retries + 1,
      initialDelayMs: this.#retryDelayMs,
      factor: 2,
      maxDelayMs: 8000,
      jitter: 0.5,
      keepAlive: true,
      retryable: (error) => isWsdError(error) && retryable.has(error),
      onRetry: (error, { attempt, delayMs }) => this.#log?.info('storage request failed, retrying', { what, attempt, delayMs, reason: (error as Error).message }),
      ...(signal ? { signal } : {}),
    });
  }

  /** Whatever `fn` throws once `signal` has aborted is CANCELLED (the retry loop's own wait throws an AbortError). */
  async #cancellable<T>(what: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (signal?.aborted && !isWsdError(error, 'CANCELLED')) throw new WsdError('CANCELLED', `storage/azure ${what}: cancelled`);
      if (!isWsdError(error)) throw this.#mapped(what, error).error;
      throw error;
    }
  }
}

/** Errors worth another try; a set rather than a flag on the error, so the error's shape stays the closed WsdError. */
const retryable = new WeakSet<WsdError>();
/** Azure's error code behind a mapped error (`BlobAlreadyExists`, `ConditionNotMet`…), to tell refusals apart. */
const azureCodes = new WeakMap<WsdError, string>();

/**
 * Block IDs: `<put id>-<index>`, base64. Unique to one put, so two writers of the same key never overwrite each
 * other's staged blocks, and all of one length (Azure requires that of every block of a blob).
 */
function blockId(putId: string, index: number): string {
  return Buffer.from(`${putId}-${String(index).padStart(6, '0')}`).toString('base64');
}

function blockIdOwner(id: string): string {
  return Buffer.from(id, 'base64').toString('utf8').split('-')[0]!;
}

/**
 * Etags as the ETag header carries them, quoted (`"0x8D…"`): List Blobs returns them bare, and one object must have
 * one etag whichever call names it. Quoted is also what an If-Match header takes.
 */
function quotedEtag(etag: string): string {
  return etag.startsWith('"') || etag.startsWith('W/') ? etag : `"${etag}"`;
}

/** `bytes 2-4/10` → 10. */
function totalSize(contentRange: string | undefined): number | undefined {
  const match = /\/(\d+)\s*$/.exec(contentRange ?? '');
  return match ? Number(match[1]) : undefined;
}
