import { z } from 'zod';
import { DownloadContentInitializer } from './download-content-initializer.js';
import { definePlugin, durationSchema, networkPolicyFields } from '../../../core/plugin-api.js';

export const downloadInitializerPlugin = definePlugin({
  kind: 'initializer',
  id: 'download',
  description: 'Downloads files into the workspace, checking their sha256 digests',
  configSchema: z.strictObject({
    attempts: z.number().int().positive().default(5).describe('Attempts per file on transient failures (network errors, 5xx, 429, idle timeouts).'),
    initialRetryDelay: durationSchema.prefault('1s').describe('First retry delay; doubles each retry.'),
    ...networkPolicyFields('downloads'),
    maxBytes: z
      .number()
      .int()
      .positive()
      .default(16 * 1024 ** 3)
      .describe('Largest file accepted, in bytes (default 16 GiB); a larger one fails with RESOURCE_EXHAUSTED.'),
    timeout: durationSchema
      .refine((ms) => ms > 0, 'must be longer than 0')
      .prefault('5m')
      .describe('Longest a connection may stay silent (connecting, awaiting the response, between body chunks) before the attempt fails and is retried.'),
  }),
  create: ({ config }) =>
    new DownloadContentInitializer({
      attempts: config.attempts,
      initialRetryDelayMs: config.initialRetryDelay,
      deniedNetworks: config.deniedNetworks,
      allowedNetworks: config.allowedNetworks,
      maxBytes: config.maxBytes,
      timeoutMs: config.timeout,
    }),
});
