import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/** An attached loop device, as sysfs shows it. */
export interface LoopDevice {
  /** `/dev/loop3` */
  path: string;
  /** `7:3`, as `/proc/self/mountinfo` names the device of a mount. */
  device: string;
  /** The file it reads and writes, as the kernel recorded it when attaching (absolute). */
  backingFile: string;
  /** The backing file was deleted (the device keeps it alive until it is detached). */
  deleted: boolean;
}

/**
 * Every attached loop device on the host, from `/sys/block/loop*` (a device without `loop/backing_file` is free).
 * Read from sysfs rather than `losetup --list`: no process, and the same view from inside a privileged container.
 * Cost: a few small sysfs reads per device.
 */
export async function attachedLoopDevices(): Promise<LoopDevice[]> {
  const names = (await readdir('/sys/block').catch(() => [] as string[])).filter((n) => /^loop\d+$/.test(n));
  const devices = await Promise.all(
    names.map(async (name): Promise<LoopDevice | undefined> => {
      const backing = await readFile(path.join('/sys/block', name, 'loop', 'backing_file'), 'utf8').catch(() => undefined);
      const device = await readFile(path.join('/sys/block', name, 'dev'), 'utf8').catch(() => undefined);
      if (!backing || !device) return undefined;
      const line = backing.replace(/\n$/, '');
      const deleted = line.endsWith(' (deleted)');
      return { path: `/dev/${name}`, device: device.trim(), backingFile: deleted ? line.slice(0, -' (deleted)'.length) : line, deleted };
    }),
  );
  return devices.filter((d): d is LoopDevice => d !== undefined);
}
