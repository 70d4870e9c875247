import { WsdError, type WsdErrorCode } from '../errors.js';
import { spawnTracked } from './child-processes.js';

/**
 * How a system program (losetup, mount, mkfs.ext4, xfs_quota, lvcreate, ...) is run by wsd and its plugins: one
 * seam, so every such call gets the same guarantees.
 *
 * - The program gets an argument array, never a shell string: a path or a size is one argument, whatever it holds.
 * - It runs through {@link spawnTracked}: its own process group, marked, ended on abort, on timeout and at daemon
 *   stop; orphans of a crashed daemon are swept at the next start.
 * - It has a deadline (`timeoutMs`, required: a hung `mount` must not hang a dispose forever).
 * - A failure is a {@link WsdError} whose message names the program, its arguments, how it ended and the end of its
 *   stderr; the caller picks the code (`errorCode`), because only the caller knows what an exit status means
 *   (`umount` exit 32 with "target is busy" is `UNAVAILABLE`, `mkfs` running out of room `RESOURCE_EXHAUSTED`).
 * - Stable messages: `LC_ALL=C`, so callers may match on stderr text.
 *
 * Arguments show up in error texts and logs (and in `/proc` for everybody on the host while the program runs):
 * never pass a secret as an argument; hand it over on stdin (`input`) or in `env`.
 */

/** Why a run failed, for the caller's {@link RunCommandOptions.errorCode}. */
export interface CommandFailure {
  program: string;
  args: readonly string[];
  /**
   * - `exit`: the program ran and exited with a status not in `okExitCodes` (or was killed by a signal it did not
   *   get from wsd: then `exitCode` is null and `signal` says which);
   * - `timeout`: `timeoutMs` passed; its process group was killed;
   * - `not-found`: the program is not installed (not on `PATH`);
   * - `spawn`: it could not be started for another reason (permissions, resources).
   */
  reason: 'exit' | 'timeout' | 'not-found' | 'spawn';
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  /** The last {@link stderrKeptBytes} bytes of stderr. */
  stderr: string;
}

export interface RunCommandOptions {
  /** Milliseconds the program may run; then its whole process group is SIGKILLed and the run fails (`timeout`). */
  timeoutMs: number;
  /** Aborting kills the process group; the run then fails with `CANCELLED` (never mapped by `errorCode`). */
  signal?: AbortSignal;
  /**
   * The code of the thrown WsdError, from the failure. Either one code for every failure, or a function; a function
   * that returns undefined gets the default: `DEADLINE_EXCEEDED` for a timeout, `FAILED_PRECONDITION` for a program
   * that is not installed, `INTERNAL` otherwise.
   */
  errorCode?: WsdErrorCode | ((failure: CommandFailure) => WsdErrorCode | undefined);
  /** What the run was for, first in the error message (`cannot mount /work/ws-1`); default: the command line. */
  context?: string;
  /** The field or setting the failure is about, copied to the WsdError (e.g. `quota.loop.imagesDir`). */
  field?: string;
  /** Exit statuses that count as success (default `[0]`; `e2fsck -p` exits 1 after fixing something). */
  okExitCodes?: readonly number[];
  /** Written to the program's stdin, which is then closed; without it stdin is /dev/null. */
  input?: string | Buffer;
  /**
   * The program's environment besides `PATH` (the daemon's plus the sbin folders) and `LC_ALL=C`: nothing else of
   * the daemon's environment is passed on (it may hold storage credentials).
   */
  env?: Record<string, string>;
  cwd?: string;
  /** Stdout beyond this many bytes fails the run (the output would be parsed truncated). Default 4 MiB. */
  maxStdoutBytes?: number;
}

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** How much of stderr is kept for the error message (its end: programs print the cause last). */
export const stderrKeptBytes = 4096;

/** The sbin folders are on PATH even when wsd was started with a user's PATH: the programs this seam runs live there. */
const systemPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Runs `program` with `args` and resolves with its stdout and stderr once it exits with an accepted status; rejects
 * with a WsdError otherwise (see the module comment). Cost: one process (group); nothing is retried here.
 */
export function runCommand(program: string, args: readonly string[], options: RunCommandOptions): Promise<CommandResult> {
  const { timeoutMs, signal } = options;
  const okExitCodes = options.okExitCodes ?? [0];
  const maxStdout = options.maxStdoutBytes ?? 4 * 1024 * 1024;
  if (signal?.aborted) return Promise.reject(cancelled(program, args, options));
  const timeout = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;

  return new Promise<CommandResult>((resolve, reject) => {
    const child = spawnTracked(program, args, {
      env: { ...options.env, PATH: process.env.PATH ? `${process.env.PATH}:${systemPath}` : systemPath, LC_ALL: 'C', LANG: 'C' },
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      signal: combined,
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let tooMuch = false;
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > maxStdout) {
        if (!tooMuch) killGroup(child.pid);
        tooMuch = true;
        return;
      }
      stdout.push(chunk);
    });
    child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-stderrKeptBytes)));
    if (options.input !== undefined) {
      child.stdin!.on('error', () => {}); // a program that exits without reading its input: its exit status decides
      child.stdin!.end(options.input);
    }

    let settled = false;
    const fail = (failure: CommandFailure) => {
      if (settled) return;
      settled = true;
      reject(commandError(failure, options));
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      if (error.name === 'AbortError') {
        if (signal?.aborted) {
          settled = true;
          return reject(cancelled(program, args, options));
        }
        return fail({ program, args, reason: 'timeout', exitCode: null, signal: 'SIGKILL', stdout: '', stderr });
      }
      fail({ program, args, reason: error.code === 'ENOENT' ? 'not-found' : 'spawn', exitCode: null, signal: null, stdout: '', stderr: error.message });
    });
    child.once('close', (code: number | null, killedBy: NodeJS.Signals | null) => {
      if (settled) return;
      const out = Buffer.concat(stdout).toString('utf8');
      if (signal?.aborted) {
        settled = true;
        return reject(cancelled(program, args, options));
      }
      if (timeout.aborted) return fail({ program, args, reason: 'timeout', exitCode: code, signal: killedBy, stdout: out, stderr });
      if (tooMuch) return fail({ program, args, reason: 'exit', exitCode: code, signal: killedBy, stdout: out, stderr: `${stderr}\n(stdout exceeded ${maxStdout} bytes)` });
      if (code !== null && okExitCodes.includes(code)) {
        settled = true;
        return resolve({ exitCode: code, stdout: out, stderr });
      }
      fail({ program, args, reason: 'exit', exitCode: code, signal: killedBy, stdout: out, stderr });
    });
  });
}

function killGroup(pid: number | undefined): void {
  try {
    if (pid) process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** The WsdError for a failed run: the caller's code, the command, how it ended, the end of its stderr. */
function commandError(failure: CommandFailure, options: RunCommandOptions): WsdError {
  const mapped = typeof options.errorCode === 'function' ? options.errorCode(failure) : options.errorCode;
  const code = mapped ?? defaultCode(failure);
  const how =
    failure.reason === 'timeout'
      ? `did not finish within ${options.timeoutMs} ms and was killed`
      : failure.reason === 'not-found'
        ? 'is not installed (not found on PATH)'
        : failure.reason === 'spawn'
          ? `could not be started: ${failure.stderr}`
          : failure.exitCode === null
            ? `was killed by ${failure.signal}`
            : `exited with status ${failure.exitCode}`;
  const detail = failure.reason === 'exit' || failure.reason === 'timeout' ? lastLines(failure.stderr) : '';
  const message = `${options.context ? `${options.context}: ` : ''}${commandLine(failure.program, failure.args)} ${how}${detail ? `: ${detail}` : ''}`;
  return new WsdError(code, message, { ...(options.field ? { field: options.field } : {}) });
}

function defaultCode(failure: CommandFailure): WsdErrorCode {
  if (failure.reason === 'timeout') return 'DEADLINE_EXCEEDED';
  if (failure.reason === 'not-found') return 'FAILED_PRECONDITION';
  return 'INTERNAL';
}

function cancelled(program: string, args: readonly string[], options: RunCommandOptions): WsdError {
  return new WsdError('CANCELLED', `${options.context ? `${options.context}: ` : ''}${commandLine(program, args)} was cancelled`);
}

/** The command as one would type it, arguments with spaces or quotes JSON-quoted (for messages only). */
function commandLine(program: string, args: readonly string[]): string {
  return [program, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

/** Stderr trimmed to its last few lines, on one line (error texts travel in gRPC status messages and logs). */
function lastLines(text: string): string {
  return text.trim().split('\n').slice(-5).map((line) => line.trim()).filter(Boolean).join(' | ');
}
