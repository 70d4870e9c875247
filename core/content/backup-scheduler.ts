import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../observability/logger.js';
import { retry } from '../retry.js';

export interface BackupSchedulerOptions {
  /** Milliseconds between backups of one workspace; 0 disables the scheduler. */
  periodMs: number;
  /** Fraction of the period each wait is randomly shortened or lengthened by. */
  jitter: number;
  retries: number;
  retryDelayMs: number;
  log: Logger;
  metrics?: Registry;
  /**
   * Backs the workspace up unless nothing changed; resolves `'skipped'` or `'stored'`. Throws on failure (retried
   * with backoff) or with a `gone` error for a workspace that is no longer ready (dropped, not retried).
   */
  backup(id: string): Promise<'stored' | 'skipped' | 'gone'>;
}

/**
 * Backs up every ready workspace every period (with jitter), one timer per workspace. Failures are retried with
 * exponential backoff, then logged and counted — never fatal, and never in the way of API calls (the workspace's
 * own lock orders them; the node-wide upload limit lives in BackupStore).
 */
export class BackupScheduler {
  readonly #options: BackupSchedulerOptions;
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #runs: Counter | undefined;
  #stopped = false;

  constructor(options: BackupSchedulerOptions) {
    this.#options = options;
    this.#runs = options.metrics
      ? new Counter({
          name: 'wsd_periodic_backups_total',
          help: 'Periodic backup runs by outcome: stored, skipped (unchanged), failed (after retries)',
          labelNames: ['outcome'],
          registers: [options.metrics],
        })
      : undefined;
  }

  get enabled(): boolean {
    return this.#options.periodMs > 0;
  }

  /** Starts (or restarts) the schedule of one workspace. */
  add(id: string): void {
    if (!this.enabled || this.#stopped) return;
    this.remove(id);
    const { periodMs, jitter } = this.#options;
    const wait = Math.max(10, Math.round(periodMs * (1 + jitter * (2 * Math.random() - 1))));
    const timer = setTimeout(() => void this.#run(id), wait);
    timer.unref();
    this.#timers.set(id, timer);
  }

  remove(id: string): void {
    clearTimeout(this.#timers.get(id));
    this.#timers.delete(id);
  }

  stop(): void {
    this.#stopped = true;
    for (const id of [...this.#timers.keys()]) this.remove(id);
  }

  async #run(id: string): Promise<void> {
    this.#timers.delete(id);
    if (this.#stopped) return;
    const log = this.#options.log.child({ workspaceId: id, op: 'periodic-backup' });
    try {
      const outcome = await retry(() => this.#options.backup(id), {
        attempts: this.#options.retries + 1,
        initialDelayMs: this.#options.retryDelayMs,
        retryable: () => !this.#stopped,
        onRetry: (error, { attempt, delayMs }) => log.warn('periodic backup failed; retrying', { attempt, delayMs, error: error as Error }),
      });
      if (outcome === 'gone') return;
      this.#runs?.inc({ outcome });
      if (outcome === 'skipped') log.debug('unchanged since the last backup; skipped');
    } catch (error) {
      if (this.#stopped) return;
      this.#runs?.inc({ outcome: 'failed' });
      log.error('periodic backup failed; next try in one period', { attempts: this.#options.retries + 1, error: error as Error });
    }
    this.add(id);
  }
}
