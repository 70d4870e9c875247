import { z } from 'zod';
import { durationSchema } from '../../../core/config/root-schema.js';
import { definePlugin } from '../../../core/kernel/plugin.js';
import { defaultDeniedNetworks, parseCidr } from '../../../core/net/address-policy.js';
import { DownloadContentInitializer } from './download-content-initializer.js';

/** An IPv4 or IPv6 network (`10.0.0.0/8`, `fd00::/8`, or a single address); the message says what is wrong. */
const cidrSchema = z.string().check((ctx) => {
  try {
    parseCidr(ctx.value);
  } catch (error) {
    ctx.issues.push({ code: 'custom', input: ctx.value, message: (error as Error).message });
  }
});

export const downloadInitializerPlugin = definePlugin({
  kind: 'initializer',
  id: 'download',
  description: 'Downloads files into the workspace, checking their sha256 digests',
  configSchema: z.strictObject({
    attempts: z.number().int().positive().default(5).describe('Attempts per file on transient failures (network errors, 5xx, 429, idle timeouts).'),
    initialRetryDelay: durationSchema.prefault('1s').describe('First retry delay; doubles each retry.'),
    deniedNetworks: z
      .array(cidrSchema)
      .default([...defaultDeniedNetworks])
      .describe(
        'Networks (CIDR) never connected to, checked on every resolved address and redirect hop: by default loopback, unspecified, link-local (cloud metadata 169.254.169.254) and the Alibaba and AWS-IPv6 metadata addresses. Add the cluster pod/service and node networks to keep requests off internal services.',
      ),
    allowedNetworks: z
      .array(cidrSchema)
      .default([])
      .describe('Networks (CIDR) always permitted, even when inside deniedNetworks (e.g. an artifact cache on the node).'),
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
