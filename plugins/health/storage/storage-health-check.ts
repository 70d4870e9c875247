import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { HealthCheck, HealthResult, StorageBackend } from '../../../core/plugin-api.js';

export interface StorageHealthCheckOptions {
  critical: boolean;
  /**
   * Milliseconds between probes. Readiness probes come every few seconds, and each probe is a billed put and delete
   * on a cloud store: checks in between answer the last probe's result. 0 (the default here; the plugin's config
   * defaults to 60 s) probes on every check.
   */
  intervalMs?: number;
  /** The clock (tests). */
  now?: () => number;
}

/**
 * The storage backend takes a write: a tiny probe object is put and deleted again. A read alone would pass on a
 * read-only or half-broken backend where every backup fails; any failure (unreachable, credentials refused, full,
 * a timeout) is reported with the backend's message.
 *
 * The first check probes; later checks return the cached result until `intervalMs` has passed since that probe
 * started, and then the next check probes again. Checks that arrive while a probe runs share it.
 */
/** How long one shared probe (a put and a delete) may take. */
const probeTimeoutMs = 30_000;

export class StorageHealthCheck implements HealthCheck {
  readonly name = 'storage';
  readonly critical: boolean;
  readonly #storage: StorageBackend;
  readonly #intervalMs: number;
  readonly #now: () => number;
  /** One key per daemon process, so nodes sharing a bucket do not trip over each other's probes. */
  readonly #probeKey = `wsd-health/${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
  #last: { at: number; result: HealthResult } | undefined;
  #running: Promise<HealthResult> | undefined;

  constructor(storage: StorageBackend, options: StorageHealthCheckOptions) {
    this.#storage = storage;
    this.critical = options.critical;
    this.#intervalMs = options.intervalMs ?? 0;
    this.#now = options.now ?? Date.now;
  }

  async check(signal: AbortSignal): Promise<HealthResult> {
    if (this.#last && this.#now() - this.#last.at < this.#intervalMs) return this.#last.result;
    if (!this.#running) {
      const at = this.#now();
      // The probe is shared by every check that arrives meanwhile, so it runs under its own deadline, not the first
      // caller's: one caller giving up must not fail (and cache as failing) everybody's answer.
      this.#running = this.#probe(AbortSignal.timeout(probeTimeoutMs)).then((result) => {
        this.#last = { at, result };
        this.#running = undefined;
        return result;
      });
    }
    // Each caller still stops waiting at its own deadline.
    return Promise.race([
      this.#running,
      new Promise<HealthResult>((resolve) => {
        if (signal.aborted) resolve({ status: 'failing', reason: 'storage: no answer before the probe deadline' });
        signal.addEventListener('abort', () => resolve({ status: 'failing', reason: 'storage: no answer before the probe deadline' }), { once: true });
      }),
    ]);
  }

  async #probe(signal: AbortSignal): Promise<HealthResult> {
    try {
      await this.#storage.put({ key: this.#probeKey, body: Buffer.from('ok'), signal });
      await this.#storage.delete({ key: this.#probeKey, signal });
      return { status: 'ok' };
    } catch (error) {
      return { status: 'failing', reason: `storage: ${(error as Error).message}` };
    }
  }
}
