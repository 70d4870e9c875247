import { writeFileSync } from 'node:fs';
import path from 'node:path';
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
