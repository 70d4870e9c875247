import { constants } from 'node:fs';
import { access, open } from 'node:fs/promises';
import path from 'node:path';
import { runCommand } from '../../../core/plugin-api.js';
import type { LoopFsType } from './loop-file-systems.js';

/** Programs the strategy runs, per file system type (mkfs to make, the rest to mount, grow and repair). */
const programs: Record<LoopFsType, string[]> = {
  ext4: ['mount', 'umount', 'losetup', 'fallocate', 'mkfs.ext4', 'e2fsck', 'resize2fs'],
  xfs: ['mount', 'umount', 'losetup', 'fallocate', 'mkfs.xfs', 'xfs_growfs'],
};

const searchPath = () => [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin'].filter(Boolean);

/**
 * Why loop file systems cannot be made on this host, or undefined when they can: root, `/dev/loop-control`, the
 * programs, and a free loop device (`losetup --find`, which a container without loop devices fails). Runs once, at
 * plugin creation; the `quota` health check repeats the cheap part later.
 */
export async function missingLoopPrerequisite(fsType: LoopFsType, timeoutMs: number): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'loop devices need Linux';
  if (process.getuid?.() !== 0) return 'attaching loop devices and mounting needs root (run wsd as root, privileged in a container)';
  try {
    await (await open('/dev/loop-control', 'r+')).close();
  } catch (error) {
    return `/dev/loop-control is not usable (${(error as Error).message}); load the loop module, or give the container the host's /dev`;
  }
  const dirs = searchPath();
  for (const program of programs[fsType]) {
    const found = await Promise.any(dirs.map((dir) => access(path.join(dir, program), constants.X_OK))).then(() => true, () => false);
    if (!found) return `${program} is not installed (needed for fsType ${fsType}: ${fsType === 'xfs' ? 'xfsprogs' : 'e2fsprogs'}, util-linux)`;
  }
  try {
    await runCommand('losetup', ['--find'], { timeoutMs, context: 'no free loop device' });
  } catch (error) {
    return (error as Error).message;
  }
  return undefined;
}
