import { definePlugin, quotaStrategyToken, z } from '../../../core/plugin-api.js';
import { QuotaHealthCheck } from './quota-health-check.js';

export const quotaHealthPlugin = definePlugin({
  kind: 'health',
  id: 'quota',
  description: 'The quota strategy can provision now (loop: a free loop device, a writable images folder)',
  configSchema: z.strictObject({
    critical: z.boolean().default(true).describe('Whether an unusable quota strategy makes the node not ready (every InitWorkspace would fail on it).'),
  }),
  requires: { quota: quotaStrategyToken },
  create: ({ config, services }) => new QuotaHealthCheck(services.quota, { critical: config.critical }),
});
