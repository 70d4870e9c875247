import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';

/** One line of `/proc/self/mountinfo` (proc(5)), the fields wsd reads. */
export interface MountEntry {
  /** `major:minor` of the mounted device (for a loop device, `7:<n>`). */
  device: string;
  /** Where it is mounted, unescaped (`\040` → space). */
  mountPoint: string;
  fsType: string;
  /** The mount source (`/dev/loop3`, `tmpfs`). */
  source: string;
}

/**
 * The mounts this process sees, in mount order (a mount listed later may hide an earlier one at the same point).
 * [] where `/proc/self/mountinfo` does not exist (not Linux). Cost: one read of a small procfs file.
 */
export async function readMountTable(): Promise<MountEntry[]> {
  const table = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const entries: MountEntry[] = [];
  for (const line of table.split('\n')) {
    // "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue": optional fields end at "-".
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    if (fields.length < 10 || separator === -1) continue;
    entries.push({ device: fields[2]!, mountPoint: unescape(fields[4]!), fsType: fields[separator + 1]!, source: unescape(fields[separator + 2]!) });
  }
  return entries;
}

/**
 * Mount points at or below `dir` (resolved on disk first), outermost first. [] when `dir` does not exist or on a
 * system without `/proc/self/mountinfo`.
 */
export async function mountsAtOrBelow(dir: string): Promise<string[]> {
  const real = await realpath(dir).catch(() => undefined);
  if (!real) return [];
  const inside = (mountPoint: string) => mountPoint === real || mountPoint.startsWith(real === '/' ? '/' : `${real}/`);
  return [...new Set((await readMountTable()).map((m) => m.mountPoint).filter(inside))];
}

/**
 * `dir` as the mount table names it: resolved on disk (mountinfo lists real paths, so a working area reached through
 * a symlink would never match its own mounts). `path.resolve(dir)` when it does not exist.
 */
export async function mountTablePath(dir: string): Promise<string> {
  return await realpath(dir).catch(() => path.resolve(dir));
}

function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}
