import assert from 'node:assert/strict';
import type { HealthCheck, HealthResult } from '../../core/health/health-check.js';
import { runWithNodeTest, type ConformanceCase, type ConformanceSuite } from './suite.js';

export interface HealthConformanceOptions {
  /** Builds the check in a healthy environment. */
  healthy(): Promise<HealthCheck> | HealthCheck;
  /**
   * Builds the check in an environment where it must not report `ok` (a missing folder, a storage that refuses
   * writes, a full disk), if the test can make one. Its `reason` must say what is wrong.
   */
  unhealthy?(): Promise<HealthCheck> | HealthCheck;
  /** How long one check may take on a healthy host (default 5 s: checks run on every readiness probe). */
  maxMs?: number;
}

const statuses = ['ok', 'degraded', 'failing'];

/**
 * The HealthCheck contract, as cases every health plugin runs: a stable kebab-case name and a boolean `critical`;
 * `check` reports instead of throwing, answers promptly, says why when it is not `ok`, and stops promptly once its
 * signal aborts (the probe's deadline).
 */
export function healthCheckConformance(name: string, options: HealthConformanceOptions): ConformanceSuite {
  const maxMs = options.maxMs ?? 5000;
  const cases: ConformanceCase[] = [];
  const it = (caseName: string, run: ConformanceCase['run']) => void cases.push({ name: caseName, run });
  const settle = async (check: HealthCheck, signal: AbortSignal): Promise<HealthResult> => {
    try {
      return await check.check(signal);
    } catch (error) {
      // The contract: a thrown error counts as failing. It must not be how a healthy check answers.
      return { status: 'failing', reason: `threw: ${(error as Error).message}` };
    }
  };

  it('has a stable kebab-case name and says whether it is critical', async () => {
    const check = await options.healthy();
    assert.match(check.name, /^[a-z][a-z0-9-]*$/);
    assert.equal(typeof check.critical, 'boolean');
  });

  it(`reports ok on a healthy host within ${maxMs} ms, twice in a row`, async () => {
    const check = await options.healthy();
    await (check as { start?: () => Promise<void> }).start?.();
    try {
      for (let i = 0; i < 2; i++) {
        const started = Date.now();
        const result = await check.check(AbortSignal.timeout(maxMs * 2));
        assert.ok(statuses.includes(result.status), `status ${String(result.status)}`);
        assert.equal(result.status, 'ok', result.reason);
        assert.ok(Date.now() - started <= maxMs, `took ${Date.now() - started} ms`);
      }
    } finally {
      await (check as { stop?: () => Promise<void> }).stop?.();
    }
  });

  it('reports a problem with a reason, and does not throw for it', async (t) => {
    if (!options.unhealthy) t.skip(`${name} gives no unhealthy environment to check`);
    const check = await options.unhealthy!();
    const result = await check.check(AbortSignal.timeout(maxMs * 2)).catch((error: Error) => assert.fail(`threw instead of reporting: ${error.message}`));
    assert.ok(result.status === 'failing' || result.status === 'degraded', `expected a problem, got ${result.status}`);
    assert.ok(result.reason && result.reason.length > 0, 'says why');
  });

  it('answers promptly when its signal is already aborted', async () => {
    const check = await options.healthy();
    const controller = new AbortController();
    controller.abort();
    const started = Date.now();
    const result = await settle(check, controller.signal);
    assert.ok(Date.now() - started <= 1000, `took ${Date.now() - started} ms after abort`);
    assert.ok(statuses.includes(result.status));
  });

  return { name: `HealthCheck conformance: ${name}`, cases };
}

/** The health suite under node:test (see {@link healthCheckConformance} for other runners). */
export function describeHealthCheckConformance(name: string, options: HealthConformanceOptions): void {
  runWithNodeTest(healthCheckConformance(name, options));
}
