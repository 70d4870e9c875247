import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { WsdError } from '../../core/errors.js';
import { silentLogger } from '../../core/observability/logger.js';
import { QuotaHealthCheck } from '../../plugins/health/quota/quota-health-check.js';
import { StorageHealthCheck } from '../../plugins/health/storage/storage-health-check.js';
import { LoopQuotaStrategy } from '../../plugins/quota/loop/loop-quota-strategy.js';
import { NoneQuotaStrategy } from '../../plugins/quota/none/none-quota-strategy.js';
import { memoryStorage } from '../kit/fakes.js';
import { DiskSpaceHealthCheck } from '../../plugins/health/disk-space/disk-space-health-check.js';
import { WorkingAreaHealthCheck } from '../../plugins/health/working-area/working-area-health-check.js';
import { tempDir } from '../kit/temp-dir.js';
import { describeHealthCheckConformance } from './health-check.js';

describeHealthCheckConformance('working-area', {
  healthy: () => new WorkingAreaHealthCheck({ dir: tempDir('wsd-health-wa-'), critical: true }),
  // A file where the working area should be: not a folder, nothing can be written there.
  unhealthy: () => {
    const file = path.join(tempDir('wsd-health-wa-bad-'), 'not-a-folder');
    writeFileSync(file, 'x');
    return new WorkingAreaHealthCheck({ dir: file, critical: true });
  },
});

describeHealthCheckConformance('disk-space', {
  healthy: () => new DiskSpaceHealthCheck({ dir: tempDir('wsd-health-ds-'), failBelowBytes: 1, warnBelowBytes: 1, critical: true }),
  // More free space demanded than any disk has.
  unhealthy: () => new DiskSpaceHealthCheck({ dir: tempDir('wsd-health-ds-bad-'), failBelowBytes: Number.MAX_SAFE_INTEGER, warnBelowBytes: Number.MAX_SAFE_INTEGER, critical: true }),
});

describeHealthCheckConformance('storage', {
  healthy: () => new StorageHealthCheck(memoryStorage(), { critical: true, intervalMs: 60_000 }),
  // A backend that refuses every write (credentials revoked, bucket gone).
  unhealthy: () => {
    const storage = memoryStorage();
    storage.put = async () => {
      throw new WsdError('PERMISSION_DENIED', 'access denied by the backend');
    };
    return new StorageHealthCheck(storage, { critical: true, intervalMs: 60_000 });
  },
});

describeHealthCheckConformance('quota', {
  // `none` has nothing to check; loop's own probe (a free loop device) is exercised in plugins/quota/loop's tests.
  healthy: () => new QuotaHealthCheck(new NoneQuotaStrategy(), { critical: true }),
  // A loop strategy whose images folder is gone (deleted, an unmounted volume): nothing can be provisioned.
  unhealthy: () =>
    new QuotaHealthCheck(
      new LoopQuotaStrategy({
        imagesDir: path.join(tempDir('wsd-health-quota-'), 'gone'),
        fsType: 'ext4',
        defaultSizeBytes: 1 << 30,
        preallocate: false,
        discard: true,
        commandTimeoutMs: 10_000,
        healthIntervalMs: 0,
        log: silentLogger,
      }),
      { critical: true },
    ),
});
