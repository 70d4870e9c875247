import { definePlugin, durationSchema, z } from '../../../core/plugin-api.js';
import { XfsQuotaStrategy } from './xfs-quota-strategy.js';

export const xfsQuotaPlugin = definePlugin({
  kind: 'quota',
  id: 'xfs',
  description: 'XFS project quotas: one project id per workspace folder on a working area mounted with prjquota (needs root)',
  configSchema: z
    .strictObject({
      firstProjectId: z.number().int().min(1).max(4294967294).default(1000).describe('Lowest XFS project id wsd hands out. The range is wsd\'s alone on this file system: ids in it with limits but no data and no workspace are cleared at start.'),
      lastProjectId: z.number().int().min(1).max(4294967294).default(9999).describe('Highest XFS project id wsd hands out (included): at most this many minus firstProjectId plus one workspaces at once.'),
      softHeadroomPercent: z
        .number()
        .int()
        .min(0)
        .max(1000)
        .default(100)
        .describe('While a workspace\'s content is restored its limit is a soft one (a compressed backup may expand past it halfway), with a hard limit this many percent above it; 0 = no hard limit while restoring.'),
      commandTimeout: durationSchema.prefault('30s').describe('Deadline of each xfs_quota and xfs_io run.'),
      healthInterval: durationSchema.prefault('30s').describe('How long the quota health check reuses its last probe (an xfs_quota state query).'),
    })
    .refine((c) => c.lastProjectId >= c.firstProjectId, { message: 'lastProjectId must not be below firstProjectId', path: ['lastProjectId'] })
    // Ids are allocated and rebuilt by walking the range: a node holds far fewer workspaces than this.
    .refine((c) => c.lastProjectId - c.firstProjectId < 1_000_000, { message: 'the range of project ids may hold at most 1000000 ids', path: ['lastProjectId'] }),
  create: async ({ config, paths, log, skip }) => {
    const strategy = new XfsQuotaStrategy({
      workingArea: paths.workingArea,
      firstProjectId: config.firstProjectId,
      lastProjectId: config.lastProjectId,
      softHeadroomPercent: config.softHeadroomPercent,
      commandTimeoutMs: config.commandTimeout,
      healthIntervalMs: config.healthInterval,
      log,
    });
    const unusable = await strategy.unusableReason();
    return unusable ? skip(unusable) : strategy;
  },
});
