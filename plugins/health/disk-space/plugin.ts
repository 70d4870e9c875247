import { z } from 'zod';
import { DiskSpaceHealthCheck } from './disk-space-health-check.js';
import { definePlugin, diskGuardToken, pathsToken, sizeSchema } from '../../../core/plugin-api.js';

export const diskSpaceHealthPlugin = definePlugin({
  kind: 'health',
  id: 'disk-space',
  description: 'Free space on the working area (not ready below a threshold)',
  configSchema: z.strictObject({
    failBelow: sizeSchema
      .optional()
      .describe('Below this much free space the check fails (with critical: true the node is not ready). Default: workspaces.minFree, the disk guard\'s threshold, when it is set; else 2GiB.'),
    warnBelow: sizeSchema.prefault('10GiB').describe('Below this much free space the node reports degraded (still ready).'),
    critical: z.boolean().default(true).describe('Whether failing makes the node not ready.'),
  }),
  requires: { paths: pathsToken, guard: diskGuardToken },
  create: ({ config, services }) => {
    // One threshold for both by default: readiness turns when inits start being refused, not at another level.
    const failBelow = config.failBelow ?? (services.guard.minFreeBytes > 0 ? services.guard.minFreeBytes : 2 * 1024 ** 3);
    return new DiskSpaceHealthCheck({ dir: services.paths.workingArea, failBelowBytes: failBelow, warnBelowBytes: Math.max(config.warnBelow, failBelow), critical: config.critical });
  },
});
