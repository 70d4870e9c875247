import { z } from 'zod';
import { WorkingAreaHealthCheck } from './working-area-health-check.js';
import { definePlugin, pathsToken } from '../../../core/plugin-api.js';

export const workingAreaHealthPlugin = definePlugin({
  kind: 'health',
  id: 'working-area',
  description: 'The working area exists and is writable',
  configSchema: z.strictObject({
    critical: z.boolean().default(true).describe('Whether a failure makes the node not ready.'),
  }),
  requires: { paths: pathsToken },
  create: ({ config, services }) => new WorkingAreaHealthCheck({ dir: services.paths.workingArea, critical: config.critical }),
});
