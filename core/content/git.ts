import { stat } from 'node:fs/promises';
import { WsdError } from '../errors.js';
import { spawnTracked } from '../process/child-processes.js';

export interface GitOptions {
  cwd: string;
  /** Extra environment (credentials travel here, never on the command line). */
  env?: Record<string, string>;
  /** Run as this user (when the daemon is root). */
  user?: { uid: number; gid: number };
  signal?: AbortSignal;
}

export interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs git with a predictable environment: no prompts, no system or global config, no home (no ssh keys), no
 * transport unless `env.GIT_ALLOW_PROTOCOL` names it, repository hooks and fsmonitor disabled, English messages
 * (error classification reads them).
 */
export function runGit(args: string[], options: GitOptions): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    // fsmonitor would run a command named in the repository's own config: never from the daemon.
    const child = spawnTracked('git', ['-c', 'core.hooksPath=/dev/null', '-c', 'core.fsmonitor=false', ...args], {
      cwd: options.cwd,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        // Not the daemon's home: ssh would offer root's keys (and trust root's known hosts) to a remote a user chose.
        HOME: '/nonexistent',
        XDG_CONFIG_HOME: '/nonexistent',
        LANG: 'C',
        LC_ALL: 'C',
        GIT_TERMINAL_PROMPT: '0',
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
        // No transport unless the caller names the ones it checked (the git initializers do, per remote).
        GIT_ALLOW_PROTOCOL: '',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.user ? { uid: options.user.uid, gid: options.user.gid } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-16_000)));
    child.once('error', (error: NodeJS.ErrnoException) => {
      if (error.name === 'AbortError') reject(new WsdError('CANCELLED', `git ${subcommand(args)}: cancelled`));
      else reject(new WsdError('FAILED_PRECONDITION', error.code === 'ENOENT' ? 'git is not installed' : `git: ${error.message}`));
    });
    child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/**
 * Who git should run as inside an existing checkout: the configured workspace user, else (when wsd is root) the
 * checkout's owner. Root-owned content is read as root: readers neutralize what the repository's own config could
 * run (see core/content/git-status.ts).
 */
export async function checkoutUser(checkout: string, configured?: { uid: number; gid: number }): Promise<{ uid: number; gid: number } | undefined> {
  if (configured || process.getuid?.() !== 0) return configured;
  const info = await stat(checkout);
  return info.uid === 0 ? undefined : { uid: info.uid, gid: info.gid };
}

/** Runs git and throws a WsdError (with git's last stderr line) unless it exits 0. */
export async function git(args: string[], options: GitOptions): Promise<string> {
  const result = await runGit(args, options);
  if (result.code !== 0) throw gitFailure(subcommand(args), result);
  return result.stdout;
}

/**
 * Access problems are permanent (PERMISSION_DENIED); unknown repositories are not retried either, nor failures of
 * the local file system (a folder that vanished, a full or read-only disk: another try cannot fix them, and they say
 * nothing about the remote); the rest is transient.
 */
export function gitFailure(command: string, result: GitResult): WsdError {
  const text = result.stderr.trim();
  const last = text.split('\n').filter((l) => l.trim()).slice(-2).join(' / ') || `exit ${result.code}`;
  if (/(No such file or directory|Unable to read current working directory|could not create (work tree|leading directories)|No space left on device|Read-only file system|Disk quota exceeded)/i.test(text)) {
    return new WsdError(/No space left|Disk quota/i.test(text) ? 'RESOURCE_EXHAUSTED' : 'FAILED_PRECONDITION', `git ${command}: local file system: ${last}`);
  }
  if (/Authentication failed|could not read (Username|Password)|HTTP Basic: Access denied|\b401\b|\b403\b|Permission denied \(publickey/i.test(text)) {
    return new WsdError('PERMISSION_DENIED', `git ${command}: access denied: ${last}`);
  }
  if (/(repository .* not found|does not appear to be a git repository|not found|couldn't find remote ref|did not match any)/i.test(text)) {
    return new WsdError('FAILED_PRECONDITION', `git ${command}: ${last}`);
  }
  if (/(Could not resolve host|Connection refused|Connection timed out|Operation timed out|early EOF|unexpected disconnect|RPC failed|\b50[0-9]\b|Empty reply)/i.test(text)) {
    return new WsdError('UNAVAILABLE', `git ${command}: ${last}`);
  }
  return new WsdError('FAILED_PRECONDITION', `git ${command}: ${last}`);
}

/** The git subcommand in an argument list that may start with `-c key=value` pairs. */
function subcommand(args: string[]): string {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-c') i++;
    else if (!args[i]!.startsWith('-')) return args[i]!;
  }
  return 'git';
}
