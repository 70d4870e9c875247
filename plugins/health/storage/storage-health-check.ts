import type { HealthCheck, HealthResult } from '../../../core/health/health-check.js';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { StorageBackend } from '../../../core/storage/storage-backend.js';

/**
 * The storage backend takes a write: a tiny probe object is put and deleted again. A read alone would pass on a
 * read-only or half-broken backend where every backup fails; any failure (unreachable, credentials refused, full,
 * a timeout) is reported with the backend's message.
 */
export class StorageHealthCheck implements HealthCheck {
  readonly name = 'storage';
  readonly critical: boolean;
  readonly #storage: StorageBackend;
  /** One key per daemon process, so nodes sharing a bucket do not trip over each other's probes. */
  readonly #probeKey = `wsd-health/${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;

  constructor(storage: StorageBackend, options: { critical: boolean }) {
    this.#storage = storage;
    this.critical = options.critical;
  }

  async check(signal: AbortSignal): Promise<HealthResult> {
    try {
      await this.#storage.put({ key: this.#probeKey, body: Buffer.from('ok'), signal });
      await this.#storage.delete({ key: this.#probeKey, signal });
      return { status: 'ok' };
    } catch (error) {
      return { status: 'failing', reason: `storage: ${(error as Error).message}` };
    }
  }
}
