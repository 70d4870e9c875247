import assert from 'node:assert/strict';
import { statfsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { startTestKernel } from '../../../test/kit/start-test-kernel.js';
import { tempDir } from '../../../test/kit/temp-dir.js';
import { healthCheckToken } from '../../../core/health/health-check.js';
import { diskGuardToken } from '../../../core/kernel/core-tokens.js';
import { isWsdError } from '../../../core/errors.js';
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

  it('fails below the disk guard\'s threshold (workspaces.minFree) unless failBelow is set apart', async () => {
    const minFree = free * 4; // more than this disk has: the guard refuses, the check fails
    const guarded = await startTestKernel({ config: { workspaces: { minFree }, health: { 'disk-space': {} } } });
    const [check] = guarded.kernel.get(healthCheckToken);
    const result = await check!.check(new AbortController().signal);
    assert.equal(result.status, 'failing');
    assert.match(result.reason!, /free on .* below/);
    await assert.rejects(guarded.kernel.get(diskGuardToken).assertRoom(), (error: unknown) => isWsdError(error, 'RESOURCE_EXHAUSTED') && error.field === 'workspaces.minFree');
    await guarded.stop();
    const apart = await startTestKernel({ config: { workspaces: { minFree }, health: { 'disk-space': { failBelow: 1024, warnBelow: 1024 } } } });
    assert.equal((await apart.kernel.get(healthCheckToken)[0]!.check(new AbortController().signal)).status, 'ok');
    await apart.stop();
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
