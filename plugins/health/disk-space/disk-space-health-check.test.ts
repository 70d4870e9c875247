import assert from 'node:assert/strict';
import { statfsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { startTestKernel } from '../../../test/kit/start-test-kernel.js';
import { tempDir } from '../../../test/kit/temp-dir.js';
import { healthCheckToken } from '../../../core/health/health-check.js';
import { ConfigError } from '../../../core/config/config-error.js';
import { DiskSpaceHealthCheck } from './disk-space-health-check.js';

describe('health/disk-space', () => {
  const dir = tempDir();
  const fs = statfsSync(dir);
  const free = fs.bavail * fs.bsize;
  const check = (failBelowBytes: number, warnBelowBytes: number) => new DiskSpaceHealthCheck({ dir, failBelowBytes, warnBelowBytes, critical: true }).check();

  it('is ok, degraded or failing against the real free space of the folder', async () => {
    assert.deepEqual(await check(0, 0), { status: 'ok' });
    const degraded = await check(0, free * 4);
    assert.equal(degraded.status, 'degraded');
    assert.match(degraded.reason!, /free on .* below/);
    assert.equal((await check(free * 4, free * 8)).status, 'failing');
  });

  it('takes sizes with units from config, and names a bad one', async () => {
    const { kernel, stop } = await startTestKernel({ config: { health: { 'disk-space': { failBelow: '1KiB', warnBelow: 2048 } } } });
    const [diskSpace] = kernel.get(healthCheckToken);
    assert.equal(diskSpace?.name, 'disk-space');
    assert.equal((await diskSpace!.check(new AbortController().signal)).status, 'ok');
    await stop();
    await assert.rejects(startTestKernel({ config: { health: { 'disk-space': { failBelow: 'lots' } } } }), (e: ConfigError) =>
      e.issues.some((i) => i.path === 'health.disk-space.failBelow' && /size like 10GiB/.test(i.message)),
    );
  });
});
