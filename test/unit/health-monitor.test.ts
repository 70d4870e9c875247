import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { HealthMonitor } from '../../core/health/health-monitor.js';
import { settableHealthCheck } from '../kit/fakes.js';

describe('HealthMonitor', () => {
  it('is ready only while every critical check is ok; non-critical ones only report', async () => {
    const disk = settableHealthCheck('disk-space');
    const extra = settableHealthCheck('nice-to-have', false);
    const metrics = new Registry();
    const monitor = new HealthMonitor([disk, extra], { metrics });
    assert.equal((await monitor.report()).ready, true);

    extra.result = { status: 'failing', reason: 'meh' };
    assert.equal((await monitor.report()).ready, true);

    disk.result = { status: 'degraded', reason: '9% free' };
    const report = await monitor.report();
    assert.equal(report.ready, false);
    assert.deepEqual(report.checks[0], { name: 'disk-space', critical: true, status: 'degraded', reason: '9% free' });
    assert.match(await metrics.metrics(), /wsd_health_check_status\{check="disk-space",critical="true"\} 1/);
  });

  it('counts a check that throws or hangs as failing, and still answers', async () => {
    let aborted = false;
    const hangs = {
      name: 'hangs',
      critical: true,
      check: (signal: AbortSignal) =>
        new Promise<never>(() => signal.addEventListener('abort', () => (aborted = true))),
    };
    const throws = { name: 'throws', critical: false, check: () => Promise.reject(new Error('EIO')) };
    const report = await new HealthMonitor([hangs, throws], { timeoutMs: 50 }).report();
    assert.deepEqual(report, {
      ready: false,
      checks: [
        { name: 'hangs', critical: true, status: 'failing', reason: 'no answer within 50 ms' },
        { name: 'throws', critical: false, status: 'failing', reason: 'EIO' },
      ],
    });
    assert.ok(aborted, 'the hanging check was told to stop');
  });
});
