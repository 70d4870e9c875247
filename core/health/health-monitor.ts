import { Gauge, type Registry } from 'prom-client';
import type { HealthCheck, HealthStatus } from './health-check.js';

export interface CheckReport {
  name: string;
  critical: boolean;
  status: HealthStatus;
  reason?: string;
}

export interface HealthReport {
  /** All critical checks are ok (non-critical ones may be degraded or failing). */
  ready: boolean;
  checks: CheckReport[];
}

const statusValue: Record<HealthStatus, number> = { ok: 0, degraded: 1, failing: 2 };

/**
 * Runs every health check concurrently under one deadline and folds them into readiness. A check that throws or
 * misses the deadline counts as failing: a probe must answer, even when a check hangs on a dead NFS mount.
 */
export class HealthMonitor {
  readonly #checks: readonly HealthCheck[];
  readonly #timeoutMs: number;
  readonly #gauge: Gauge | undefined;

  constructor(checks: readonly HealthCheck[], options: { timeoutMs?: number; metrics?: Registry } = {}) {
    this.#checks = checks;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#gauge = options.metrics
      ? new Gauge({
          name: 'wsd_health_check_status',
          help: 'Last result of each health check: 0 ok, 1 degraded, 2 failing',
          labelNames: ['check', 'critical'],
          registers: [options.metrics],
        })
      : undefined;
  }

  async report(): Promise<HealthReport> {
    const checks = await Promise.all(this.#checks.map((check) => this.#run(check)));
    for (const c of checks) this.#gauge?.set({ check: c.name, critical: String(c.critical) }, statusValue[c.status]);
    return { ready: checks.every((c) => !c.critical || c.status === 'ok'), checks };
  }

  async #run(check: HealthCheck): Promise<CheckReport> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new Error(`no answer within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
    });
    try {
      const result = await Promise.race([check.check(controller.signal), deadline]);
      return { name: check.name, critical: check.critical, status: result.status, ...(result.reason ? { reason: result.reason } : {}) };
    } catch (error) {
      return { name: check.name, critical: check.critical, status: 'failing', reason: (error as Error)?.message ?? String(error) };
    } finally {
      clearTimeout(timer);
    }
  }
}
