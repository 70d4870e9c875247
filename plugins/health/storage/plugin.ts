import { definePlugin, durationSchema, storageBackendToken, z } from '../../../core/plugin-api.js';
import { StorageHealthCheck } from './storage-health-check.js';

export const storageHealthPlugin = definePlugin({
  kind: 'health',
  id: 'storage',
  description: 'The storage backend answers requests',
  configSchema: z.strictObject({
    critical: z.boolean().default(false).describe('Whether unreachable storage makes the node not ready (otherwise it is reported as failing only).'),
    interval: durationSchema
      .prefault('60s')
      .describe('Time between probes (a put and a delete, billed on cloud stores); checks in between report the last result. 0 probes on every check.'),
  }),
  requires: { storage: storageBackendToken },
  create: ({ config, services }) => new StorageHealthCheck(services.storage, { critical: config.critical, intervalMs: config.interval }),
});
