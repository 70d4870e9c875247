import type { HealthCheck, HealthResult, QuotaStrategy } from '../../../core/plugin-api.js';

/**
 * Whether the configured quota strategy can do its work now (a free loop device, the project quota still on, the
 * thin pool active): what its optional `checkHealth` says. A strategy without one (`none`) counts as usable. What a
 * probe costs and how long its result is reused is the strategy's business (it knows which of its checks are cheap).
 */
export class QuotaHealthCheck implements HealthCheck {
  readonly name = 'quota';
  readonly critical: boolean;
  readonly #quota: QuotaStrategy;

  constructor(quota: QuotaStrategy, options: { critical: boolean }) {
    this.#quota = quota;
    this.critical = options.critical;
  }

  async check(signal: AbortSignal): Promise<HealthResult> {
    if (!this.#quota.checkHealth) return { status: 'ok' };
    try {
      const result = await this.#quota.checkHealth({ signal });
      if (result.status === 'ok') return { status: 'ok' };
      return { status: result.status, reason: `quota strategy "${this.#quota.id}": ${result.reason ?? 'no reason given'}` };
    } catch (error) {
      return { status: 'failing', reason: `quota strategy "${this.#quota.id}": ${(error as Error).message}` };
    }
  }
}
