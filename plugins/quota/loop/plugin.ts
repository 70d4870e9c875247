import { definePlugin, durationSchema, makeFolders, sizeSchema, WsdError, z } from '../../../core/plugin-api.js';
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { missingLoopPrerequisite } from './loop-prerequisites.js';
import { LoopQuotaStrategy } from './loop-quota-strategy.js';

export const loopQuotaPlugin = definePlugin({
  kind: 'quota',
  id: 'loop',
  description: 'A loop-mounted image file per workspace (ext4 or xfs): the image size is the limit (needs root)',
  configSchema: z.strictObject({
    imagesDir: z
      .string()
      .min(1)
      .optional()
      .describe('Folder of the workspace images (<workspaceId>.img). Default: <dataDir>/quota-images. This strategy\'s alone: images in it that no workspace names are deleted at start. Keep it on the file system the disk guard watches (the working area\'s).'),
    fsType: z.enum(['ext4', 'xfs']).default('ext4').describe('File system of each image. xfs needs limits of at least 300 MiB.'),
    defaultSize: sizeSchema.prefault('10GiB').describe('Image size of a workspace initialized with storage_quota_bytes 0 (an image always has a size).'),
    preallocate: z
      .boolean()
      .default(false)
      .describe('Reserve each image\'s full size when it is made (fallocate): a workspace can then never run out of room because the node did, but the node\'s disk holds every limit in full. Default: sparse images, blocks taken as workspaces write.'),
    discard: z.boolean().default(true).describe('Mount with discard: deleting files in a workspace gives the blocks back to the images\' file system (sparse images only).'),
    commandTimeout: durationSchema.prefault('2m').describe('Deadline of each mkfs, mount, umount, losetup and resize run.'),
    healthInterval: durationSchema.prefault('30s').describe('How long the quota health check reuses its last probe (a losetup --find).'),
  }),
  create: async ({ config, paths, resolvePath, log, skip }) => {
    const missing = await missingLoopPrerequisite(config.fsType, config.commandTimeout);
    if (missing) return skip(missing);
    const configured = config.imagesDir ? resolvePath(config.imagesDir) : path.join(paths.dataDir, 'quota-images');
    try {
      await makeFolders(configured, 0o700);
    } catch (error) {
      throw new WsdError('FAILED_PRECONDITION', `cannot create the loop images folder ${configured}: ${(error as Error).message}`, { field: 'quota.loop.imagesDir' });
    }
    // The kernel records a loop device's backing file by its real path: so are images named here.
    const imagesDir = await realpath(configured);
    return new LoopQuotaStrategy({
      imagesDir,
      fsType: config.fsType,
      defaultSizeBytes: config.defaultSize,
      preallocate: config.preallocate,
      discard: config.discard,
      commandTimeoutMs: config.commandTimeout,
      healthIntervalMs: config.healthInterval,
      log,
    });
  },
});
