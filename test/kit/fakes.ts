import { Readable } from 'node:stream';
import { WsdError } from '../../core/errors.js';
import type { HealthCheck, HealthResult } from '../../core/health/health-check.js';
import type { QuotaStrategy } from '../../core/quota/quota-strategy.js';
import type { StorageBackend } from '../../core/storage/storage-backend.js';

/** A StorageBackend that holds objects in memory; for unit tests of code that uses storage, not of storage. */
export function memoryStorage(): StorageBackend & { objects: Map<string, Buffer> } {
  const objects = new Map<string, Buffer>();
  const missing = (key: string) => new WsdError('NOT_FOUND', `no object ${key}`);
  return {
    objects,
    capabilities: { presign: false, conditionalCreate: false, serverSideCopy: false },
    async put({ key, body }) {
      const chunks: Buffer[] = [];
      for await (const chunk of body instanceof Uint8Array ? [body] : body) chunks.push(Buffer.from(chunk));
      objects.set(key, Buffer.concat(chunks));
      return { size: objects.get(key)!.length };
    },
    async get({ key, range }) {
      const data = objects.get(key);
      if (!data) throw missing(key);
      const start = range?.offset ?? 0;
      const slice = data.subarray(start, range?.length === undefined ? undefined : start + range.length);
      return { body: Readable.from([slice]), size: data.length, contentLength: slice.length };
    },
    async head({ key }) {
      const data = objects.get(key);
      if (!data) throw missing(key);
      return { key, size: data.length, modifiedAt: new Date() };
    },
    async *list({ prefix }) {
      for (const key of [...objects.keys()].filter((k) => k.startsWith(prefix)).sort()) {
        yield { key, size: objects.get(key)!.length, modifiedAt: new Date() };
      }
    },
    async delete({ key }) {
      objects.delete(key);
    },
  };
}

/** A QuotaStrategy that records calls and enforces nothing. */
export function recordingQuota(calls: string[] = []): QuotaStrategy & { calls: string[] } {
  return {
    calls,
    capabilities: { enforces: false, reportsUsage: false, resizable: true },
    async provision({ workspaceId, dir, limitBytes }) {
      calls.push(`provision ${workspaceId}`);
      return { strategy: 'recording', workspaceId, dir, limitBytes, data: {} };
    },
    async setLimit({ handle, limitBytes }) {
      calls.push(`setLimit ${handle.workspaceId} ${limitBytes}`);
      return { ...handle, limitBytes };
    },
    async usage() {
      return {};
    },
    async release({ handle }) {
      calls.push(`release ${handle.workspaceId}`);
    },
    async recover({ handles }) {
      calls.push(`recover ${handles.length}`);
    },
  };
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
