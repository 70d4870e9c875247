import { definePlugin } from '../../../core/plugin-api.js';
import { NoneQuotaStrategy } from './none-quota-strategy.js';

export const noneQuotaPlugin = definePlugin({
  kind: 'quota',
  id: 'none',
  description: 'No disk quota: workspace folders are plain folders (the embedded default)',
  create: () => new NoneQuotaStrategy(),
});
