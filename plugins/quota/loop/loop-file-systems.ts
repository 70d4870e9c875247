import { runCommand, WsdError, type RunCommandOptions } from '../../../core/plugin-api.js';

export type LoopFsType = 'ext4' | 'xfs';

const MiB = 1024 * 1024;

/** What the loop strategy needs to know of a file system it formats images with. */
export interface LoopFileSystem {
  type: LoopFsType;
  /** Smallest image mkfs accepts (and that leaves a workspace some room), with why. */
  minBytes: number;
  minReason: string;
  /**
   * Formats the image file (not attached). `keepBlocks`: do not discard the image's blocks first (mkfs discards by
   * default, which punches holes into a file: a preallocated image would be sparse again).
   */
  format(image: string, base: CommandBase, keepBlocks: boolean): Promise<unknown>;
  /**
   * Checks and repairs an unmounted image before it is mounted again after a reboot (what fsck does at boot for
   * fstab entries). Undefined when the file system replays its log on mount and needs nothing (xfs).
   */
  repair?(image: string, base: CommandBase): Promise<unknown>;
  /** Grows the mounted file system at `dir` on `device` (whose size was already raised) to fill it, online. */
  growOnline(options: { dir: string; device: string }, base: CommandBase): Promise<unknown>;
  /** Grows the unmounted image's file system to fill the image; undefined when only online growing exists. */
  growOffline?(image: string, base: CommandBase): Promise<unknown>;
}

/** The strategy's options for every command (deadline, signal, error mapping); each call adds its context. */
export type CommandBase = RunCommandOptions;

export const loopFileSystems: Record<LoopFsType, LoopFileSystem> = {
  ext4: {
    type: 'ext4',
    minBytes: 4 * MiB,
    minReason: 'below 4 MiB an ext4 file system has no room for its journal',
    // -m 0: no blocks reserved for root, the workspace's limit is all the workspace's. -F: the target is a file.
    format: (image, base, keepBlocks) =>
      runCommand('mkfs.ext4', ['-q', '-F', '-m', '0', ...(keepBlocks ? ['-E', 'nodiscard'] : []), image], { ...base, context: `cannot format ${image} as ext4` }),
    // -p fixes what is safe to fix unattended; exit 1 = fixed something (fine), 2 = fixed, reboot advised (not for
    // an unmounted image), 4 and up = errors left.
    repair: (image, base) => runCommand('e2fsck', ['-p', image], { ...base, okExitCodes: [0, 1, 2], context: `the ext4 file system in ${image} needs repair (e2fsck -p could not fix it)` }),
    growOnline: ({ device }, base) => runCommand('resize2fs', [device], { ...base, context: `cannot grow the ext4 file system on ${device} online` }),
    growOffline: async (image, base) => {
      // resize2fs refuses an image that was not checked since it was last mounted.
      await runCommand('e2fsck', ['-f', '-p', image], { ...base, okExitCodes: [0, 1, 2], context: `cannot check ${image} before growing it` });
      await runCommand('resize2fs', [image], { ...base, context: `cannot grow the ext4 file system in ${image}` });
    },
  },
  xfs: {
    type: 'xfs',
    // mkfs.xfs: "Filesystem must be larger than 300MB".
    minBytes: 300 * MiB,
    minReason: 'mkfs.xfs refuses file systems of 300 MiB or less',
    format: (image, base, keepBlocks) => runCommand('mkfs.xfs', ['-q', '-f', ...(keepBlocks ? ['-K'] : []), image], { ...base, context: `cannot format ${image} as xfs` }),
    growOnline: ({ dir }, base) => runCommand('xfs_growfs', ['-d', dir], { ...base, context: `cannot grow the xfs file system at ${dir}` }),
  },
};

export function assertFsType(value: string): asserts value is LoopFsType {
  if (value !== 'ext4' && value !== 'xfs') throw new WsdError('FAILED_PRECONDITION', `unknown file system type ${JSON.stringify(value)} in a loop quota handle`);
}
