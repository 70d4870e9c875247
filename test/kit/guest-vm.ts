import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../core/config/package-root.js';
import { tempDir } from './temp-dir.js';

/**
 * Runs a command inside a throw-away Linux guest under QEMU, for the tests this host's kernel cannot run (XFS project
 * quota, device-mapper thin volumes). The guest is Debian's kernel with a busybox initramfs, prepared once by
 * `scripts/prepare-guest-kernel.sh`; its root file system is the host's own root, shared read-only over 9p under a
 * tmpfs overlay, so node, the compiled project and the host's tools are there at the same paths and anything the
 * guest writes outside its disks vanishes with it. QEMU emulates (TCG): this host's /dev/kvm hangs a stock kernel.
 *
 * One boot costs ~9 s of an idle 2-core machine before the command starts; run a whole test file per boot.
 */
export interface GuestRunOptions {
  /** argv of the command, run as root in the guest (`/bin/sh` is the host's). */
  command: readonly string[];
  /** Folder to run in (default: the repository root). */
  cwd?: string;
  /** Variables for the command, on top of PATH, HOME and WSD_GUEST_RESULTS. */
  env?: Record<string, string>;
  /** Sparse disk images attached as virtio disks, in order: `/dev/vda`, `/dev/vdb`, ... */
  disks?: ReadonlyArray<{ sizeBytes: number }>;
  /** For the whole run, boot included (default 10 min). QEMU is killed when it passes. */
  timeoutMs?: number;
  /** Guest memory (default 2048 MiB; TCG allocates host memory only as the guest touches it). */
  memoryMiB?: number;
  /** Guest CPUs (default 2). */
  cpus?: number;
  /** Each chunk of the guest's console (kernel messages, the command's stdout and stderr) as it arrives. */
  onOutput?: (chunk: string) => void;
  signal?: AbortSignal;
}

export interface GuestRunResult {
  /** The command's exit status. */
  exitCode: number;
  /** The guest console, the command's output included (the last 1 MiB). */
  output: string;
  /** Folder the command wrote into as `$WSD_GUEST_RESULTS`, readable until the test process exits. */
  resultsDir: string;
  /** From QEMU's start to the command's start, and to QEMU's exit. */
  bootMs: number;
  durationMs: number;
}

/** Where the guest sees the job folder; `$WSD_GUEST_RESULTS` is `results/` inside it. */
const guestJobDir = '/run/wsd-guest';
const consoleLimit = 1024 * 1024;

/** The prepared guest that matches this checkout: kernel (ELF, booted through PVH) and initramfs. */
export interface GuestKernel {
  dir: string;
  vmlinux: string;
  initramfs: string;
  release: string;
}

/**
 * The guest prepared for this checkout's `scripts/prepare-guest-kernel.sh` and `test/kernel/guest-init.sh` (their
 * hash names the folder). Throws, saying what to run, when it or QEMU is missing: a kernel test fails rather than
 * skips on a machine where `.ci/run` was to install them.
 */
export function guestKernel(): GuestKernel {
  const root = packageRoot();
  const script = readFileSync(path.join(root, 'scripts', 'prepare-guest-kernel.sh'));
  const init = readFileSync(path.join(root, 'test', 'kernel', 'guest-init.sh'));
  const hash = createHash('sha256').update(Buffer.concat([script, init])).digest('hex').slice(0, 12);
  const pin = (name: string) => {
    const value = new RegExp(`^${name}=(\\S+)$`, 'm').exec(script.toString('utf8'))?.[1];
    if (!value) throw new Error(`scripts/prepare-guest-kernel.sh sets no ${name}`);
    return value;
  };
  const dir = path.join(root, '.cache', 'guest-kernel', `${pin('KERNEL_PACKAGE')}_${pin('KERNEL_PACKAGE_VERSION')}-${hash}`);
  const manifest = path.join(dir, 'manifest.json');
  if (!existsSync(manifest)) {
    throw new Error(
      `the test guest is not prepared (no ${manifest}): run \`bash .ci/install-system-deps && bash scripts/prepare-guest-kernel.sh\` ` +
        '(.ci/run does both; the guest is rebuilt whenever that script or test/kernel/guest-init.sh changes)',
    );
  }
  const { release } = JSON.parse(readFileSync(manifest, 'utf8')) as { release: string };
  return { dir, vmlinux: path.join(dir, 'vmlinux'), initramfs: path.join(dir, 'initramfs.img'), release };
}

/** QEMU's path, or an error saying how to install it. */
export function qemuBinary(): string {
  const found = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' });
  const bin = found.stdout.trim();
  if (found.status !== 0 || !bin) {
    throw new Error('qemu-system-x86_64 is not installed: run `bash .ci/install-system-deps` (Debian package qemu-system-x86; .ci/run does it)');
  }
  return bin;
}

/**
 * Boots the guest, runs `command` in it, and resolves with its exit status and output once the guest powered off.
 * Rejects (with the console's tail) when QEMU cannot start, the guest dies before reporting a status (kernel panic,
 * a broken initramfs), the timeout passes or `signal` aborts. QEMU is always ended: on every path out of this call,
 * and by SIGKILL if the test process exits meanwhile. Nothing is mounted on the host.
 */
export async function runInGuest(options: GuestRunOptions): Promise<GuestRunResult> {
  const kernel = guestKernel();
  const qemu = qemuBinary();
  const job = tempDir('wsd-guest-');
  const results = path.join(job, 'results');
  mkdirSync(results);
  writeFileSync(path.join(job, 'job.sh'), jobScript(options));
  // The project is shared on its own and mounted at its own path in the guest: the guest's /tmp, /run and /dev are
  // fresh file systems, so a checkout below them (CI clones into /tmp) would be hidden under the host root's share.
  writeFileSync(path.join(job, 'project-root'), packageRoot());
  const disks = (options.disks ?? []).map(({ sizeBytes }, i) => {
    const file = path.join(job, `disk${i}.img`);
    writeFileSync(file, '');
    truncateSync(file, sizeBytes);
    return file;
  });

  const args = [
    '-accel', 'tcg',
    '-cpu', 'max',
    '-smp', String(options.cpus ?? 2),
    '-m', String(options.memoryMiB ?? 2048),
    '-machine', 'q35',
    '-nodefaults',
    '-no-reboot',
    '-display', 'none',
    '-monitor', 'none',
    '-serial', 'stdio',
    '-kernel', kernel.vmlinux,
    '-initrd', kernel.initramfs,
    // panic=-1: a dying PID 1 reboots at once, which -no-reboot turns into QEMU's exit.
    '-append', 'console=ttyS0 quiet loglevel=3 panic=-1',
    '-virtfs', 'local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap',
    '-virtfs', `local,path=${job},mount_tag=job,security_model=none`,
    '-virtfs', `local,path=${packageRoot()},mount_tag=project,security_model=none,readonly=on,multidevs=remap`,
    // cache=unsafe: the disks are scratch space that dies with the run; flushes to the host disk would only cost.
    ...disks.flatMap((file) => ['-drive', `file=${file},if=virtio,format=raw,cache=unsafe`]),
  ];

  const started = Date.now();
  const child = spawn(qemu, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const kill = () => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  process.once('exit', kill);
  let output = '';
  let bootMs: number | undefined;
  const onData = (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    output = (output + text).slice(-consoleLimit);
    if (bootMs === undefined && output.includes('wsd-guest: running the job')) bootMs = Date.now() - started;
    options.onOutput?.(text);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);

  const timeoutMs = options.timeoutMs ?? 10 * 60_000;
  let ended: string | undefined;
  const timer = setTimeout(() => {
    ended = `the guest run did not finish within ${timeoutMs / 1000} s`;
    kill();
  }, timeoutMs);
  const onAbort = () => {
    ended = 'the guest run was aborted';
    kill();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();

  try {
    const exit = await new Promise<string>((resolve) => {
      child.once('error', (error) => resolve(`QEMU could not start: ${error.message}`));
      child.once('close', (code, signal) => resolve(`QEMU exited with ${signal ?? `code ${code}`}`));
    });
    const durationMs = Date.now() - started;
    const statusFile = path.join(job, 'exit-code');
    if (ended || !existsSync(statusFile)) {
      throw new Error(`${ended ?? `${exit} before the command reported a status`} (command: ${options.command.join(' ')}); the guest console's last lines:\n${output.slice(-6000)}`);
    }
    return { exitCode: Number(readFileSync(statusFile, 'utf8').trim()), output, resultsDir: results, bootMs: bootMs ?? durationMs, durationMs };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    kill();
    process.off('exit', kill);
    // Sparse images can hold hundreds of MiB by now; the results stay until the test process exits.
    for (const file of disks) rmSync(file, { force: true });
  }
}

/** The job the guest's init runs with the host's /bin/sh: environment, folder, then the command itself. */
function jobScript(options: GuestRunOptions): string {
  const env = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root',
    LANG: 'C.UTF-8',
    WSD_GUEST_RESULTS: `${guestJobDir}/results`,
    ...options.env,
  };
  const lines = ['set -e'];
  for (const [name, value] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`not an environment variable name: ${JSON.stringify(name)}`);
    lines.push(`export ${name}=${shellQuote(value)}`);
  }
  lines.push(`cd ${shellQuote(options.cwd ?? packageRoot())}`);
  lines.push('set +e');
  lines.push(`exec ${options.command.map(shellQuote).join(' ')}`);
  return `${lines.join('\n')}\n`;
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}
