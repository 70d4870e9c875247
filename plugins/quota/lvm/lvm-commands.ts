import { WsdError, runCommand, type RunCommandOptions } from '../../../core/plugin-api.js';

/** A logical volume as `lvs` reports it (the fields the lvm strategy reads). */
export interface LogicalVolume {
  name: string;
  /** `thin`, `thin-pool`, `linear`, ... */
  segtype: string;
  /** Thin pool of a thin volume (`''` otherwise). */
  pool: string;
  sizeBytes: number;
  /** Percent of a thin pool's (or thin volume's) data space in use. */
  dataPercent: number;
  /** Percent of a thin pool's metadata space in use (NaN for other volumes). */
  metadataPercent: number;
  /** A thin pool's behaviour when full: `error` (writes fail at once) or `queue` (writes wait, 60 s by default). */
  whenFull: string;
  tags: string[];
  /** lvs' attribute string: [4] `a` = active, [5] `o` = open (mounted or otherwise in use). */
  attr: string;
  /** `/dev/mapper/<vg>-<lv>` while active. */
  dmPath: string;
  /** `major:minor` of the active device (as /proc/self/mountinfo names it); `''` while inactive. */
  device: string;
}

const lvFields = 'lv_name,segtype,pool_lv,lv_size,data_percent,metadata_percent,lv_when_full,lv_tags,lv_attr,lv_dm_path,lv_kernel_major,lv_kernel_minor';

/**
 * The LVM commands the lvm strategy runs, all as `lvm <command>` through core's command seam (argument arrays, a
 * deadline, stderr in errors), with the operator's extra `--config` (a udev-less container or guest needs
 * `activation{udev_sync=0 udev_rules=0}`). Names are checked by the config schema or made by the strategy; sizes go
 * over in bytes.
 */
export class Lvm {
  constructor(
    private readonly timeoutMs: number,
    /** Extra `--config` for every command; '' for none. */
    private readonly config: string,
  ) {}

  /** Whether the volume group exists. */
  async hasVolumeGroup(vg: string): Promise<boolean> {
    const { stdout } = await this.#run('vgs', ['--reportformat', 'json', '-o', 'vg_name'], { context: 'cannot list the volume groups' });
    return parseReport(stdout, 'vg').some((row) => row.vg_name === vg);
  }

  /** Every logical volume of `vg`. */
  async volumes(vg: string, options: { signal?: AbortSignal } = {}): Promise<LogicalVolume[]> {
    const { stdout } = await this.#run('lvs', ['--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', lvFields, '--', vg], {
      context: `cannot list the logical volumes of volume group ${vg}`,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return parseReport(stdout, 'lv').map(toVolume);
  }

  async createThin(options: { vg: string; pool: string; name: string; sizeBytes: number; tags: string[]; signal?: AbortSignal }): Promise<void> {
    const tags = options.tags.flatMap((tag) => ['--addtag', tag]);
    await this.#run('lvcreate', ['-q', '-y', '--type', 'thin', '--virtualsize', `${options.sizeBytes}b`, '--thinpool', options.pool, '--name', options.name, ...tags, '--', options.vg], {
      context: `cannot create thin volume ${options.vg}/${options.name} of ${options.sizeBytes} bytes in pool ${options.pool}`,
      errorCode: (failure) => (/insufficient|out of (data|metadata) space|no free|full/i.test(failure.stderr) ? 'RESOURCE_EXHAUSTED' : undefined),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  /** Grows a volume to `sizeBytes` (the file system on it is grown separately). */
  async extend(vg: string, name: string, sizeBytes: number): Promise<void> {
    await this.#run('lvextend', ['-q', '--size', `${sizeBytes}b`, '--', `${vg}/${name}`], {
      context: `cannot grow ${vg}/${name} to ${sizeBytes} bytes`,
      errorCode: (failure) => (/insufficient|full/i.test(failure.stderr) ? 'RESOURCE_EXHAUSTED' : undefined),
    });
  }

  async activate(vg: string, name: string): Promise<void> {
    await this.#run('lvchange', ['-q', '--activate', 'y', '--', `${vg}/${name}`], { context: `cannot activate ${vg}/${name}` });
  }

  /** Removes a volume; one that does not exist (any more) is fine. In use (mounted elsewhere) is UNAVAILABLE. */
  async remove(vg: string, name: string): Promise<void> {
    await this.#run('lvremove', ['-q', '-y', '--', `${vg}/${name}`], {
      context: `cannot remove ${vg}/${name}`,
      errorCode: (failure) => (/in use|is open|busy/i.test(failure.stderr) ? 'UNAVAILABLE' : undefined),
    }).catch((error: unknown) => {
      if (!/Failed to find logical volume/i.test((error as Error).message)) throw error;
    });
  }

  #run(command: string, args: string[], options: Omit<RunCommandOptions, 'timeoutMs'>) {
    return runCommand('lvm', [command, ...(this.config ? ['--config', this.config] : []), ...args], { timeoutMs: this.timeoutMs, ...options });
  }
}

/** The rows of an `lvs`/`vgs --reportformat json` report. */
export function parseReport(stdout: string, kind: 'lv' | 'vg'): Array<Record<string, string>> {
  let parsed: { report?: Array<Record<string, unknown>> };
  try {
    parsed = JSON.parse(stdout) as typeof parsed;
  } catch (error) {
    throw new WsdError('INTERNAL', `cannot read the LVM report (${(error as Error).message}): ${stdout.slice(0, 200)}`);
  }
  return (parsed.report ?? []).flatMap((section) => (Array.isArray(section[kind]) ? (section[kind] as Array<Record<string, string>>) : []));
}

function toVolume(row: Record<string, string>): LogicalVolume {
  const major = row.lv_kernel_major ?? '';
  const minor = row.lv_kernel_minor ?? '';
  const active = /^\d+$/.test(major) && Number(major) >= 0 && /^\d+$/.test(minor);
  return {
    name: row.lv_name ?? '',
    segtype: row.segtype ?? '',
    pool: row.pool_lv ?? '',
    sizeBytes: Number(row.lv_size ?? 0),
    dataPercent: row.data_percent ? Number(row.data_percent) : Number.NaN,
    metadataPercent: row.metadata_percent ? Number(row.metadata_percent) : Number.NaN,
    whenFull: row.lv_when_full ?? '',
    tags: (row.lv_tags ?? '').split(',').filter(Boolean),
    attr: row.lv_attr ?? '',
    dmPath: row.lv_dm_path ?? '',
    device: active ? `${major}:${minor}` : '',
  };
}
