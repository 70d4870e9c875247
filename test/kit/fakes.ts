import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { WsdError, errnoCode, isWsdError } from '../../core/errors.js';
import type { HealthCheck, HealthResult } from '../../core/health/health-check.js';
import { assertOwnQuotaHandle, quotaHandleVersion, type QuotaCapabilities, type QuotaRecoverResult, type QuotaStrategy } from '../../core/quota/quota-strategy.js';
import { assertValidKey, assertValidPutOptions, compareKeys, type StorageBackend } from '../../core/storage/storage-backend.js';

/**
 * A StorageBackend that holds objects in memory; for unit tests of code that uses storage, not of storage. It keeps
 * the contract (`test/unit/memory-storage.test.ts` runs the conformance suite on it): etags, conditional puts
 * checked and committed in one synchronous step, listing in UTF-8 byte order, ranges, cancellation. `objects` may be
 * edited directly (to plant or corrupt an object); a buffer set that way gets a new etag when next read.
 */
export function memoryStorage(): StorageBackend & { objects: Map<string, Buffer> } {
  const objects = new Map<string, Buffer>();
  const versions = new Map<string, { data: Buffer; etag: string; modifiedAt: Date }>();
  let counter = 0;
  const missing = (key: string) => new WsdError('NOT_FOUND', `no object ${key}`);
  const cancelled = (what: string, cause: unknown) => new WsdError('CANCELLED', `${what}: cancelled`, { cause });
  /** The version of `key` now, or undefined; a buffer that a test set directly becomes a new version. */
  const current = (key: string) => {
    const data = objects.get(key);
    if (!data) return undefined;
    let version = versions.get(key);
    if (version?.data !== data) versions.set(key, (version = { data, etag: `m${++counter}`, modifiedAt: new Date() }));
    return version;
  };
  const info = (key: string) => {
    const version = current(key);
    if (!version) throw missing(key);
    return { key, size: version.data.length, modifiedAt: version.modifiedAt, etag: version.etag };
  };
  const storage: StorageBackend & { objects: Map<string, Buffer> } = {
    objects,
    capabilities: { presign: false, conditionalCreate: true, conditionalReplace: true, serverSideCopy: false },
    async put({ key, body, ifNoneMatch, ifMatch, sizeHint, signal }) {
      assertValidKey(key);
      assertValidPutOptions({ ifNoneMatch, ifMatch, sizeHint }, storage.capabilities);
      signal?.throwIfAborted();
      const chunks: Buffer[] = [];
      try {
        let sinceYield = 0;
        for await (const chunk of body instanceof Uint8Array ? [body] : body) {
          signal?.throwIfAborted();
          chunks.push(Buffer.from(chunk as Uint8Array));
          // A stream that produces synchronously would otherwise starve timers (and an abort that one schedules).
          if ((sinceYield += (chunk as Uint8Array).length) >= 1024 * 1024) {
            sinceYield = 0;
            await new Promise((resolve) => setImmediate(resolve));
          }
        }
        signal?.throwIfAborted();
      } catch (error) {
        if (!(body instanceof Uint8Array)) body.destroy();
        if (signal?.aborted) throw cancelled(`put ${key}`, error);
        throw isWsdError(error) ? error : new WsdError('INTERNAL', `put ${key}: ${(error as Error)?.message ?? String(error)}`, { cause: error });
      }
      // Check and commit in one synchronous step: that is what makes conditional puts atomic here.
      const now = current(key);
      if (ifNoneMatch && now) throw new WsdError('ALREADY_EXISTS', `object ${key} exists already`);
      if (ifMatch !== undefined && now?.etag !== ifMatch) {
        throw new WsdError('FAILED_PRECONDITION', `object ${key} ${now ? 'has another etag' : 'does not exist'} (ifMatch ${ifMatch})`);
      }
      const data = Buffer.concat(chunks);
      const version = { data, etag: `m${++counter}`, modifiedAt: new Date() };
      objects.set(key, data);
      versions.set(key, version);
      return { size: data.length, etag: version.etag };
    },
    async get({ key, range, signal }) {
      assertValidKey(key);
      signal?.throwIfAborted();
      const version = current(key);
      if (!version) throw missing(key);
      const { data } = version;
      const start = range?.offset ?? 0;
      if (!Number.isSafeInteger(start) || start < 0 || (start > 0 && start >= data.length)) {
        throw new WsdError('INVALID_ARGUMENT', `range offset ${start} is outside object ${key} of ${data.length} bytes`, { field: 'range.offset' });
      }
      if (range?.length !== undefined && (!Number.isSafeInteger(range.length) || range.length < 0)) {
        throw new WsdError('INVALID_ARGUMENT', `range length ${range.length} must be a non-negative integer`, { field: 'range.length' });
      }
      const slice = data.subarray(start, range?.length === undefined ? undefined : start + range.length);
      return { body: Readable.from(slice.length ? [slice] : []), size: data.length, contentLength: slice.length, etag: version.etag };
    },
    async head({ key, signal }) {
      assertValidKey(key);
      signal?.throwIfAborted();
      return info(key);
    },
    async *list({ prefix, signal }) {
      signal?.throwIfAborted();
      for (const key of [...objects.keys()].filter((k) => k.startsWith(prefix)).sort(compareKeys)) {
        if (objects.has(key)) yield info(key);
      }
    },
    async delete({ key, signal }) {
      assertValidKey(key);
      signal?.throwIfAborted();
      objects.delete(key);
      versions.delete(key);
    },
  };
  return storage;
}

export interface RecordingQuotaOptions {
  /** Strategy id stamped on handles (default `recording`). */
  id?: string;
  /** Overrides of the default capabilities (`softLimits` and `resizable` on, the rest off). */
  capabilities?: Partial<QuotaCapabilities>;
}

/**
 * A QuotaStrategy of contract v1 that enforces nothing and records every call in `calls` (`provision ws-1`,
 * `setLimit ws-1 soft 100`, `usage ws-1`, `release ws-1`, `recover ws-1,ws-2`). Like a real strategy it creates the
 * folder on provision (refusing an existing one) and removes it on release, so lifecycle tests see who deletes what.
 */
export function recordingQuota(calls: string[] = [], options: RecordingQuotaOptions = {}): QuotaStrategy & { calls: string[]; leftAlone: string[] } {
  const id = options.id ?? 'recording';
  const capabilities: QuotaCapabilities = { enforces: false, reportsUsage: false, resizable: true, softLimits: true, ...options.capabilities };
  const assertLimit = (limitBytes: number) => {
    if (!Number.isSafeInteger(limitBytes) || limitBytes < 0) throw new WsdError('INVALID_ARGUMENT', `bad limit ${limitBytes}`, { field: 'limitBytes' });
  };
  return {
    id,
    calls,
    /** The `leaveAlone` of the last recover call. */
    leftAlone: [] as string[],
    capabilities,
    async provision({ workspaceId, dir, limitBytes }) {
      calls.push(`provision ${workspaceId}`);
      assertLimit(limitBytes);
      await mkdir(path.dirname(dir), { recursive: true });
      try {
        await mkdir(dir);
      } catch (error) {
        if (errnoCode(error) === 'EEXIST') throw new WsdError('ALREADY_EXISTS', `${dir} exists already`);
        throw error;
      }
      return { version: quotaHandleVersion, strategy: id, workspaceId, dir, limitBytes, data: {} };
    },
    async setLimit({ handle, limitBytes, mode }) {
      calls.push(`setLimit ${handle.workspaceId} ${mode} ${limitBytes}`);
      assertOwnQuotaHandle(handle, id);
      assertLimit(limitBytes);
      if (mode === 'soft' && !capabilities.softLimits) throw new WsdError('FAILED_PRECONDITION', `${id} has no soft limits`);
      return { ...handle, limitBytes };
    },
    async usage({ handle }) {
      calls.push(`usage ${handle.workspaceId}`);
      assertOwnQuotaHandle(handle, id);
      const limit = handle.limitBytes > 0 ? { limitBytes: handle.limitBytes } : {};
      return capabilities.reportsUsage ? { usedBytes: await treeBytes(handle.dir), ...limit } : limit;
    },
    async release({ handle }) {
      calls.push(`release ${handle.workspaceId}`);
      assertOwnQuotaHandle(handle, id);
      await rm(handle.dir, { recursive: true, force: true });
    },
    async recover({ handles, leaveAlone = [] }) {
      calls.push(`recover ${handles.map((h) => h.workspaceId).join(',')}`);
      this.leftAlone = [...leaveAlone];
      const failed: QuotaRecoverResult['failed'] = [];
      for (const handle of handles) {
        try {
          assertOwnQuotaHandle(handle, id);
        } catch (error) {
          if (!isWsdError(error, 'FAILED_PRECONDITION')) throw error;
          failed.push({ workspaceId: handle.workspaceId, error });
        }
      }
      return { failed };
    },
  };
}

/** Bytes of the files under `dir` (what a real strategy would read from its quota). */
async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    total += entry.isDirectory() ? await treeBytes(full) : (await lstat(full)).size;
  }
  return total;
}

/** A HealthCheck whose answer the test sets. */
export function settableHealthCheck(name: string, critical = true): HealthCheck & { result: HealthResult } {
  return {
    name,
    critical,
    result: { status: 'ok' },
    async check() {
      return this.result;
    },
  };
}
