import { WsdError, definePlugin, durationSchema, sizeSchema, z } from '../../../core/plugin-api.js';
import { LvmQuotaStrategy } from './lvm-quota-strategy.js';

const lvmName = z
  .string()
  .regex(/^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$/, 'must be an LVM name: letters, digits, "+", "_", ".", "-" (not first)');

export const lvmQuotaPlugin = definePlugin({
  kind: 'quota',
  id: 'lvm',
  description: 'An LVM thin volume per workspace (ext4 or xfs) in a configured thin pool: the volume size is the limit (needs root)',
  configSchema: z.strictObject({
    volumeGroup: lvmName.optional().describe('Volume group holding the thin pool (vgs lists them). Required with quota.plugin lvm.'),
    thinPool: lvmName.optional().describe('Required with quota.plugin lvm. Thin pool in that volume group that workspace volumes are made in. It must fail writes when full: lvchange --errorwhenfull y <vg>/<pool>.'),
    fsType: z.enum(['ext4', 'xfs']).default('ext4').describe('File system of each volume. xfs needs limits of at least 300 MiB.'),
    defaultSize: sizeSchema.prefault('10GiB').describe('Volume size of a workspace initialized with storage_quota_bytes 0 (a volume always has a size).'),
    mountOptions: z
      .string()
      .regex(/^[A-Za-z0-9_=,.:/-]*$/, 'must be a comma-separated mount option list')
      .default('discard')
      .describe('Options each volume is mounted with (mount -o). discard gives the blocks of deleted files back to the thin pool at once; without it run fstrim on the workspaces now and then.'),
    maxPoolPercent: z.number().min(1).max(100).default(90).describe('New workspaces (and growing ones) are refused with RESOURCE_EXHAUSTED while the thin pool\'s data or metadata use is at or above this percentage, and the quota health check reports degraded.'),
    lvmConfig: z
      .string()
      .default('')
      .describe('Extra LVM configuration for every lvm command (--config). Where no udev runs (a container without the host\'s udev): activation{udev_sync=0 udev_rules=0}.'),
    commandTimeout: durationSchema.prefault('2m').describe('Deadline of each lvm, mkfs, mount, umount and resize run.'),
    healthInterval: durationSchema.prefault('30s').describe('How long the quota health check reuses its last probe (an lvs of the pool).'),
  }),
  create: async ({ config, paths, log, skip }) => {
    for (const key of ['volumeGroup', 'thinPool'] as const) {
      if (!config[key]) throw new WsdError('INVALID_ARGUMENT', `quota.lvm.${key}: required when quota.plugin is lvm`, { field: `quota.lvm.${key}` });
    }
    const strategy = new LvmQuotaStrategy({
      workingArea: paths.workingArea,
      volumeGroup: config.volumeGroup!,
      thinPool: config.thinPool!,
      fsType: config.fsType,
      defaultSizeBytes: config.defaultSize,
      mountOptions: config.mountOptions,
      maxPoolPercent: config.maxPoolPercent,
      lvmConfig: config.lvmConfig,
      commandTimeoutMs: config.commandTimeout,
      healthIntervalMs: config.healthInterval,
      log,
    });
    const unusable = await strategy.unusableReason();
    return unusable ? skip(unusable) : strategy;
  },
});
