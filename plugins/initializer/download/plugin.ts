import { z } from 'zod';
import { durationSchema } from '../../../core/config/root-schema.js';
import { definePlugin } from '../../../core/kernel/plugin.js';
import { DownloadContentInitializer } from './download-content-initializer.js';

export const downloadInitializerPlugin = definePlugin({
  kind: 'initializer',
  id: 'download',
  description: 'Downloads files into the workspace, checking their sha256 digests',
  configSchema: z.strictObject({
    attempts: z.number().int().positive().default(5).describe('Attempts per file on transient failures (network errors, 5xx, 429).'),
    initialRetryDelay: durationSchema.prefault('1s').describe('First retry delay; doubles each retry.'),
  }),
  create: ({ config }) => new DownloadContentInitializer({ attempts: config.attempts, initialRetryDelayMs: config.initialRetryDelay }),
});
