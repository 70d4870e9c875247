import { z } from 'zod';
import { definePlugin } from '../../../core/kernel/plugin.js';
import { storageBackendToken } from '../../../core/storage/storage-backend.js';
import { StorageHealthCheck } from './storage-health-check.js';

export const storageHealthPlugin = definePlugin({
  kind: 'health',
  id: 'storage',
  description: 'The storage backend answers requests',
  configSchema: z.strictObject({
    critical: z.boolean().default(false).describe('Whether unreachable storage makes the node not ready (otherwise it is reported as failing only).'),
  }),
  requires: { storage: storageBackendToken },
  create: ({ config, services }) => new StorageHealthCheck(services.storage, { critical: config.critical }),
});
