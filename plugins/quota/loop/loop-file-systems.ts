import { WsdError, type RunCommandOptions } from '../../../core/plugin-api.js';

export type LoopFsType = 'ext4' | 'xfs';

const MiB = 1024 * 1024;

/** What the loop strategy needs to know of a file system it formats images with. */
export interface LoopFileSystem {
  type: LoopFsType;
  /** Smallest image mkfs accepts (and that leaves a workspace some room), with why. */
  minBytes: number;
  minReason: string;
  /** Formats the image file (not attached). */
  format(image: string, run: CommandRunner): Promise<unknown>;
  /**
   * Checks and repairs an unmounted image before it is mounted again after a reboot (what fsck does at boot for
   * fstab entries). Undefined when the file system replays its log on mount and needs nothing (xfs).
   */
  repair?(image: string, run: CommandRunner): Promise<unknown>;
  /** Grows the mounted file system at `dir` on `device` (whose size was already raised) to fill it, online. */
  growOnline(options: { dir: string; device: string }, run: CommandRunner): Promise<unknown>;
  /** Grows the unmounted image's file system to fill the image; undefined when only online growing exists. */
  growOffline?(image: string, run: CommandRunner): Promise<unknown>;
}

/** runCommand with the strategy's timeout and signal already applied. */
export type CommandRunner = (program: string, args: string[], options?: Partial<RunCommandOptions>) => Promise<unknown>;

export const loopFileSystems: Record<LoopFsType, LoopFileSystem> = {
  ext4: {
    type: 'ext4',
    minBytes: 4 * MiB,
    minReason: 'below 4 MiB an ext4 file system has no room for its journal',
    // -m 0: no blocks reserved for root, the workspace's limit is all the workspace's. -F: the target is a file.
    format: (image, run) => run('mkfs.ext4', ['-q', '-F', '-m', '0', image], { context: `cannot format ${image} as ext4` }),
    // -p fixes what is safe to fix unattended; exit 1 = fixed something (fine), 2 = fixed, reboot advised (not for
    // an unmounted image), 4 and up = errors left.
    repair: (image, run) => run('e2fsck', ['-p', image], { okExitCodes: [0, 1, 2], context: `the ext4 file system in ${image} needs repair (e2fsck -p could not fix it)` }),
    growOnline: ({ device }, run) => run('resize2fs', [device], { context: `cannot grow the ext4 file system on ${device} online` }),
    growOffline: async (image, run) => {
      // resize2fs refuses an image that was not checked since it was last mounted.
      await run('e2fsck', ['-f', '-p', image], { okExitCodes: [0, 1, 2], context: `cannot check ${image} before growing it` });
      await run('resize2fs', [image], { context: `cannot grow the ext4 file system in ${image}` });
    },
  },
  xfs: {
    type: 'xfs',
    // mkfs.xfs: "Filesystem must be larger than 300MB".
    minBytes: 300 * MiB,
    minReason: 'mkfs.xfs refuses file systems of 300 MiB or less',
    format: (image, run) => run('mkfs.xfs', ['-q', '-f', image], { context: `cannot format ${image} as xfs` }),
    growOnline: ({ dir }, run) => run('xfs_growfs', ['-d', dir], { context: `cannot grow the xfs file system at ${dir}` }),
  },
};

export function assertFsType(value: string): asserts value is LoopFsType {
  if (value !== 'ext4' && value !== 'xfs') throw new WsdError('FAILED_PRECONDITION', `unknown file system type ${JSON.stringify(value)} in a loop quota handle`);
}
