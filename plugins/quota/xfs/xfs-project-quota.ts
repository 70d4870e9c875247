import { WsdError, runCommand, type RunCommandOptions } from '../../../core/plugin-api.js';

/** One project's line of `xfs_quota -x -c 'report -p -N -n -b'`, in bytes (xfs_quota reports 1 KiB blocks). */
export interface ProjectQuota {
  usedBytes: number;
  softBytes: number;
  hardBytes: number;
}

/** Limits to set on a project, in bytes; 0 = none. Rounded up to whole KiB, the unit xfs_quota reports in. */
export interface ProjectLimits {
  softBytes: number;
  hardBytes: number;
}

/**
 * The XFS project quota commands the xfs strategy runs (xfsprogs' `xfs_quota -x` and `xfs_io`), against one mounted
 * file system, through core's command seam (argument arrays, a deadline, stderr in errors).
 *
 * Only numbers go into an `xfs_quota -c` command string (project ids, sizes): xfs_quota splits that string itself,
 * so a path in it would be split at spaces. Paths are separate arguments of `xfs_io`, and always absolute (an
 * argument starting with `-` would be read as an option).
 *
 * xfs_quota exits 0 after some failures (a path that is not a mount with quota: "cannot setup path"), so a command
 * that should print nothing and prints on stderr is a failure too.
 */
export class XfsProjectQuota {
  constructor(
    /** Mount point of the XFS file system (xfs_quota's last argument). */
    readonly mountPoint: string,
    private readonly timeoutMs: number,
  ) {}

  /** Project quota accounting and enforcement on the file system; undefined when it has no project quota at all. */
  async state(signal?: AbortSignal): Promise<{ accounting: boolean; enforcement: boolean } | undefined> {
    const { stdout } = await this.#quota('state -p', { signal, context: `cannot read the project quota state of ${this.mountPoint}` });
    if (!/Project quota state/.test(stdout)) return undefined;
    return { accounting: /Accounting:\s*ON/.test(stdout), enforcement: /Enforcement:\s*ON/.test(stdout) };
  }

  /** The project id set on `path` (0 = none), or undefined when `path` does not exist. */
  async projectOf(path: string, signal?: AbortSignal): Promise<number | undefined> {
    assertAbsolute(path);
    try {
      const { stdout } = await runCommand('xfs_io', ['-r', '-c', 'lsproj', path], this.#options({ signal, context: `cannot read the project id of ${path}` }));
      const id = /projid\s*=\s*(\d+)/.exec(stdout)?.[1];
      if (id === undefined) throw new WsdError('INTERNAL', `xfs_io lsproj printed no project id for ${path}: ${stdout.trim()}`);
      return Number(id);
    } catch (error) {
      if (/No such file or directory/.test((error as Error).message)) return undefined;
      throw error;
    }
  }

  /**
   * Sets project `id` on the folder `dir` with the inherit flag, so that everything created in it belongs to the
   * project (and a rename or hard link across projects fails with EXDEV). `recursive` also sets it on everything
   * already inside (a folder whose id was lost), the inherit flag on every folder.
   */
  async assignProject(dir: string, id: number, options: { recursive?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    assertAbsolute(dir);
    const commands = options.recursive ? ['-c', `chproj -R ${id}`, '-c', 'chattr -R +P'] : ['-c', `chproj ${id}`, '-c', 'chattr +P'];
    const { stderr } = await runCommand('xfs_io', ['-r', ...commands, dir], this.#options({ signal: options.signal, context: `cannot set project id ${id} on ${dir}` }));
    // chattr -R also visits files, which take no inherit flag: xfs_io says so and goes on.
    const problems = stderr.split('\n').filter((line) => line.trim() && !(options.recursive && /Invalid argument/.test(line)));
    if (problems.length > 0) throw new WsdError('INTERNAL', `cannot set project id ${id} on ${dir}: ${problems.slice(-3).join(' | ')}`);
  }

  /** Sets project `id`'s block limits (0 = none for either). */
  async setLimits(id: number, limits: ProjectLimits, signal?: AbortSignal): Promise<void> {
    const soft = Math.ceil(limits.softBytes / 1024);
    const hard = Math.ceil(limits.hardBytes / 1024);
    await this.#quiet(`limit -p bsoft=${soft}k bhard=${hard}k ${id}`, { signal, context: `cannot set the limits of project ${id} on ${this.mountPoint}` });
  }

  /** Usage and limits of the projects in [first, last] that have either. */
  async report(first: number, last: number, signal?: AbortSignal): Promise<Map<number, ProjectQuota>> {
    const { stdout } = await this.#quota(`report -p -N -n -b -L ${first} -U ${last}`, { signal, context: `cannot read the project quota report of ${this.mountPoint}` });
    return parseProjectReport(stdout);
  }

  #options(options: Partial<RunCommandOptions> & { signal?: AbortSignal | undefined }): RunCommandOptions {
    const { signal, ...rest } = options;
    return { timeoutMs: this.timeoutMs, ...(signal ? { signal } : {}), ...rest };
  }

  #quota(command: string, options: { signal?: AbortSignal | undefined; context: string }) {
    return runCommand('xfs_quota', ['-x', '-c', command, this.mountPoint], this.#options(options));
  }

  async #quiet(command: string, options: { signal?: AbortSignal | undefined; context: string }): Promise<void> {
    const { stdout, stderr } = await this.#quota(command, options);
    const said = `${stderr}\n${stdout}`.trim();
    if (said) throw new WsdError('INTERNAL', `${options.context}: xfs_quota -x -c "${command}" ${this.mountPoint}: ${said.split('\n').slice(-3).join(' | ')}`);
  }
}

/**
 * Lines like `#1001   3072   8192   10240   00 [--------]`: id, used, soft, hard (1 KiB blocks), warnings, grace.
 * Projects with neither usage nor limits are left out.
 */
export function parseProjectReport(text: string): Map<number, ProjectQuota> {
  const projects = new Map<number, ProjectQuota>();
  for (const line of text.split('\n')) {
    const match = /^#(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(line.trim() + ' ');
    if (!match) continue;
    // A project whose limits were cleared keeps a line of zeros until its quota record is reclaimed: same as none.
    if (match.slice(2, 5).every((value) => value === '0')) continue;
    projects.set(Number(match[1]), { usedBytes: Number(match[2]) * 1024, softBytes: Number(match[3]) * 1024, hardBytes: Number(match[4]) * 1024 });
  }
  return projects;
}

function assertAbsolute(path: string): void {
  if (!path.startsWith('/')) throw new WsdError('INTERNAL', `not an absolute path: ${JSON.stringify(path)}`);
}
