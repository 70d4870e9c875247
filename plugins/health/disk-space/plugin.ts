import { z } from 'zod';
import { DiskSpaceHealthCheck } from './disk-space-health-check.js';
import { definePlugin, pathsToken, sizeSchema } from '../../../core/plugin-api.js';

export const diskSpaceHealthPlugin = definePlugin({
  kind: 'health',
  id: 'disk-space',
  description: 'Free space on the working area (not ready below a threshold)',
  configSchema: z.strictObject({
    failBelow: sizeSchema.prefault('2GiB').describe('Below this much free space the node is not ready for new workspaces.'),
    warnBelow: sizeSchema.prefault('10GiB').describe('Below this much free space the node reports degraded (still ready).'),
    critical: z.boolean().default(true).describe('Whether failing makes the node not ready.'),
  }),
  requires: { paths: pathsToken },
  create: ({ config, services }) =>
    new DiskSpaceHealthCheck({ dir: services.paths.workingArea, failBelowBytes: config.failBelow, warnBelowBytes: Math.max(config.warnBelow, config.failBelow), critical: config.critical }),
});
