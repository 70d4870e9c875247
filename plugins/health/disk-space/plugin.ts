import { z } from 'zod';
import { pathsToken } from '../../../core/kernel/core-tokens.js';
import { definePlugin } from '../../../core/kernel/plugin.js';
import { DiskSpaceHealthCheck } from './disk-space-health-check.js';

/** `10GiB`, `512MiB`, `1.5TiB` or a number of bytes. */
const sizeSchema = z.union([z.number().int().nonnegative(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return value;
  const match = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)$/.exec(value.trim());
  if (!match) {
    ctx.issues.push({ code: 'custom', input: value, message: 'must be a size like 10GiB or 512MiB (or a number of bytes)' });
    return z.NEVER;
  }
  const factor = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 }[match[2] as 'B'];
  return Math.floor(Number(match[1]) * factor);
});

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
