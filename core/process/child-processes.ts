import { spawn, type ChildProcess, type ChildProcessByStdio, type StdioNull, type StdioPipe } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../observability/logger.js';

/**
 * Every process wsd starts, and every process those start, is wsd's to end.
 *
 * Why this module exists: wsd runs git, tar, zstd and du over workspace folders. Killing only the direct child on
 * abort leaves its helpers running (git → git-remote-http, git-upload-pack, ssh), and a daemon killed with SIGKILL
 * leaves everything running: after a restart the daemon wipes an interrupted clone's folder, and the orphaned git
 * writes it again. So each child:
 * - leads its own process group (`detached: true`), so an abort or a stop reaches the whole tree with one signal;
 * - carries `WSD_DAEMON_MARKER=<marker>` in its environment, which every descendant inherits, so a daemon that
 *   starts after a crash finds what its predecessor left behind (`sweepOrphans`) by reading `/proc/<pid>/environ`;
 * - stays in a registry until its process group is empty, so `endAllChildren` can end what is left at stop.
 *
 * Glossary: *group* — a POSIX process group, identified by the pid of the child that leads it (`pgid`);
 * *marker* — a short string naming one daemon's data directory (`markerFor`); *orphan* — a marked process whose
 * daemon is gone.
 *
 * Limits: a descendant that leaves the group (`setsid`, e.g. a daemonizing `git gc --auto`) is not reached by an
 * abort or by `endAllChildren`, but still carries the marker and is ended by the next daemon's sweep; one that also
 * clears its environment escapes both. The environment scan needs Linux's `/proc`; elsewhere groups are still killed
 * on abort and at stop, but orphans of a crashed daemon are not found. One daemon per Node.js process (the marker
 * and the registry are module state), and one daemon per data directory (a second one would sweep the first's
 * children).
 */

/** The environment variable that marks wsd's children and their descendants. */
export const markerVariable = 'WSD_DAEMON_MARKER';

/** How long a sweep or a stop waits for SIGKILLed processes to disappear before giving up (D state, NFS). */
const killWaitMs = 5_000;
/** How often a group whose leader exited is checked for remaining members. */
const lingerPollMs = 1_000;
const pollMs = 50;

/**
 * The marker children get, set once at daemon start. Module state on purpose: the call sites (runGit, the archive
 * code, initializer plugins) sit deep below the daemon, and threading a marker through every plugin's options would
 * make each plugin responsible for a daemon-wide guarantee it can forget.
 */
let configuredMarker: string | undefined;

interface TrackedGroup {
  pgid: number;
  command: string;
  /** Polls a group whose leader exited but whose other members live on. */
  lingerTimer?: NodeJS.Timeout;
  /** Detaches the abort listener, if any. */
  release: () => void;
}

/** Live process groups started by spawnTracked, by pgid (= the leader's pid). */
const groups = new Map<number, TrackedGroup>();

/** The subset of node's spawn options wsd uses. `detached` is not among them: it is always true. */
export interface TrackedSpawnOptions {
  cwd?: string;
  /** The child's whole environment (default: the daemon's); the marker is added to it. */
  env?: NodeJS.ProcessEnv;
  /** A number passes that descriptor of the daemon to the child (at the index it stands at). */
  stdio?: 'pipe' | 'ignore' | 'inherit' | Array<StdioNull | StdioPipe | number>;
  uid?: number;
  gid?: number;
  /**
   * Aborting SIGKILLs the child's whole process group, and the child emits an `AbortError` (`error.name ===
   * 'AbortError'`), exactly as with node's own `signal` option.
   */
  signal?: AbortSignal;
}

type Piped<S, T> = S extends StdioPipe ? T : null;

/**
 * Spawns `command` as the leader of a new process group, marked (when `configureChildProcesses` was called) and
 * tracked until the group is empty. Same contract as node's `spawn` otherwise: the ChildProcess emits `error` if
 * the command cannot start, and streams are typed by `stdio` as with `spawn`.
 *
 * Note for callers: a child that leads its own group no longer gets the terminal's Ctrl-C; wsd ends it itself
 * (abort, `endAllChildren`).
 */
export function spawnTracked<I extends StdioNull | StdioPipe, O extends StdioNull | StdioPipe, E extends StdioNull | StdioPipe>(
  command: string,
  args: readonly string[],
  options: TrackedSpawnOptions & { stdio: [I, O, E] },
): ChildProcessByStdio<Piped<I, Writable>, Piped<O, Readable>, Piped<E, Readable>>;
export function spawnTracked(command: string, args: readonly string[], options?: TrackedSpawnOptions): ChildProcess;
export function spawnTracked(command: string, args: readonly string[], options: TrackedSpawnOptions = {}): ChildProcess {
  const { env, signal, ...rest } = options;
  const marker = configuredMarker;
  const child = spawn(command, args, {
    ...rest,
    ...(env || marker ? { env: marker ? { ...(env ?? process.env), [markerVariable]: marker } : env } : {}),
    // Node's own handling gives the AbortError callers expect; the group kill below reaches the descendants.
    ...(signal ? { signal } : {}),
    detached: true,
  });
  const pid = child.pid;
  if (pid === undefined) return child; // could not start: node emits 'error'
  const killGroup = () => signalGroup(pid, 'SIGKILL');
  const entry: TrackedGroup = { pgid: pid, command, release: () => signal?.removeEventListener('abort', killGroup) };
  groups.set(pid, entry);
  if (signal?.aborted) killGroup();
  else signal?.addEventListener('abort', killGroup, { once: true });
  child.once('exit', () => void forgetWhenEmpty(entry).catch(() => {}));
  return child;
}

/**
 * Sets the marker every later child carries. Called once by the daemon at start, before anything is spawned; a
 * program that embeds wsd's content code without the daemon may skip it (children are then unmarked but still
 * grouped and tracked).
 */
export function configureChildProcesses(options: { marker: string | undefined }): void {
  configuredMarker = options.marker;
}

/**
 * A marker for the daemon that owns `dataDir`: the first 16 hex digits of the SHA-256 of its real path. Stable across
 * restarts (the same folder gives the same marker, whichever symlink or relative path named it) and distinct per
 * data directory, so two daemons on one host never sweep each other's children. If the folder does not exist yet,
 * its nearest existing ancestor is resolved and the rest appended, which gives the same answer once it exists.
 */
export function markerFor(dataDir: string): string {
  return createHash('sha256').update(realPathOf(path.resolve(dataDir))).digest('hex').slice(0, 16);
}

function realPathOf(absolute: string): string {
  try {
    return realpathSync(absolute);
  } catch {
    const parent = path.dirname(absolute);
    return parent === absolute ? absolute : path.join(realPathOf(parent), path.basename(absolute));
  }
}

export interface EndAllChildrenResult {
  /** Process groups that were still alive and got SIGTERM. */
  signalled: number;
  /** Of those, groups that outlived the grace period and got SIGKILL. */
  killed: number;
  /** Groups with members still alive `killWaitMs` after SIGKILL (stuck in the kernel, e.g. on a dead NFS mount). */
  stuck: Array<{ pgid: number; command: string }>;
}

/**
 * Ends every tracked process group: SIGTERM, then SIGKILL for groups still alive after `graceMs`. Resolves once all
 * have exited (or, for processes that ignore even SIGKILL while stuck in the kernel, 5 s later, listing them in
 * `stuck`). Called at daemon stop after the workspace service stopped, so nothing new is spawned meanwhile.
 */
/**
 * SIGKILLs every tracked group at once, without waiting: for an exit that cannot wait (a forced exit, a stop that
 * timed out). Children run in groups of their own, so without this they would outlive the daemon.
 */
export function killAllChildrenNow(): void {
  for (const pgid of groups.keys()) signalGroup(pgid, 'SIGKILL');
}

export async function endAllChildren(options: { graceMs: number }): Promise<EndAllChildrenResult> {
  const tracked = [...groups.keys()];
  // Groups already empty (their last member exits between two checks of forgetWhenEmpty) are just forgotten.
  const targets = tracked.filter((pgid) => killQuietly(-pgid, 'SIGTERM'));
  let alive = await waitForGroups(targets, options.graceMs);
  const killed = alive.length;
  for (const pgid of alive) signalGroup(pgid, 'SIGKILL');
  if (alive.length > 0) alive = await waitForGroups(alive, killWaitMs);
  for (const pgid of tracked) if (!alive.includes(pgid)) forget(pgid);
  const stuck = alive.map((pgid) => ({ pgid, command: groups.get(pgid)?.command ?? '' }));
  return { signalled: targets.length, killed, stuck };
}

/** A process found by its marker. */
export interface MarkedProcess {
  pid: number;
  /** Its process group. */
  pgid: number;
  /** Its command line (truncated), for logs. */
  command: string;
}

/**
 * Every live (not zombie) process whose environment carries `marker`, except this process. Linux only (reads
 * `/proc/<pid>/environ`); returns [] elsewhere. Processes that vanish or cannot be read meanwhile are skipped: when
 * wsd runs as root it can read every environment, and otherwise its children run as its own user.
 */
export async function listMarkedProcesses(marker: string): Promise<MarkedProcess[]> {
  const entry = Buffer.from(`${markerVariable}=${marker}\0`);
  const found: MarkedProcess[] = [];
  for (const info of await scanProcesses()) {
    if (info.pid === process.pid) continue;
    const environ = await readFile(`/proc/${info.pid}/environ`).catch(() => undefined);
    if (!environ || !hasEntry(environ, entry)) continue;
    found.push({ pid: info.pid, pgid: info.pgid, command: await commandOf(info.pid, info.comm) });
  }
  return found;
}

/**
 * For a daemon starting up: SIGKILLs what a previous daemon with the same `marker` left running (it was killed
 * before it could end its children), and the process groups those orphans lead, then waits (up to 5 s) until they
 * are gone. Returns what it ended, each also logged at warn. Call it before touching workspace folders: an orphaned
 * `git clone` would otherwise rewrite a folder recovery just wiped. Never touches this process, its own process
 * group or groups it tracks. Linux only (needs `/proc`); elsewhere it returns [] at once.
 */
export async function sweepOrphans(marker: string, options: { log?: Logger; timeoutMs?: number } = {}): Promise<MarkedProcess[]> {
  if (!existsSync('/proc/self/environ')) return [];
  const ownGroup = (await scanProcesses([process.pid]))[0]?.pgid;
  const spare = (pgid: number) => pgid === ownGroup || pgid <= 1 || groups.has(pgid);
  const ended = new Map<number, MarkedProcess>();
  const deadline = Date.now() + (options.timeoutMs ?? killWaitMs);
  // Kill, rescan, repeat: an orphan may fork between the scan and the kill, and the rescan doubles as the wait.
  for (;;) {
    const marked = (await listMarkedProcesses(marker)).filter((p) => !spare(p.pgid));
    const markedPids = new Set(marked.map((p) => p.pid));
    // A group is killed only when its leader carries the marker, i.e. spawnTracked created it: a stray process that
    // merely copied the variable cannot point wsd at somebody else's group. Leaders alive in *this* scan only: the
    // id of a group that is gone may already belong to someone else (wsd is root).
    const leaders = new Set(marked.filter((p) => p.pid === p.pgid).map((p) => p.pgid));
    const members = leaders.size ? (await scanProcesses()).filter((p) => leaders.has(p.pgid) && p.pid !== process.pid && !markedPids.has(p.pid)) : [];
    const alive = [...marked, ...await Promise.all(members.map(async (p) => ({ pid: p.pid, pgid: p.pgid, command: await commandOf(p.pid, p.comm) })))];
    if (alive.length === 0) break;
    for (const p of alive) {
      if (!ended.has(p.pid)) {
        ended.set(p.pid, p);
        options.log?.warn('ending a child process left behind by a previous wsd', { pid: p.pid, pgid: p.pgid, command: p.command });
      }
      killQuietly(p.pid, 'SIGKILL');
    }
    for (const pgid of leaders) killQuietly(-pgid, 'SIGKILL');
    if (Date.now() > deadline) {
      options.log?.error('child processes left behind by a previous wsd did not exit', { pids: alive.map((p) => p.pid) });
      break;
    }
    await delay(pollMs * 2);
  }
  return [...ended.values()];
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  killQuietly(-pgid, signal);
}

/**
 * process.kill that never throws (it runs in abort listeners and at stop): false when the target is gone (ESRCH),
 * true otherwise — also for EPERM, where the target exists but may not be signalled (a setuid helper).
 */
function killQuietly(target: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(target, signal);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function forget(pgid: number): void {
  const entry = groups.get(pgid);
  if (!entry) return;
  clearInterval(entry.lingerTimer);
  entry.release();
  groups.delete(pgid);
}

/**
 * After the leader exited: forget the group once no member is left. Usually at once; a leader that left background
 * processes behind keeps its group tracked (and checked every second) until they exit too.
 */
async function forgetWhenEmpty(entry: TrackedGroup): Promise<void> {
  if ((await liveGroups([entry.pgid])).size === 0) return forget(entry.pgid);
  if (!groups.has(entry.pgid) || entry.lingerTimer) return;
  let checking = false;
  entry.lingerTimer = setInterval(() => {
    if (checking) return;
    checking = true;
    liveGroups([entry.pgid])
      .then((live) => live.size === 0 && forget(entry.pgid))
      .catch(() => {})
      .finally(() => (checking = false));
  }, lingerPollMs);
  entry.lingerTimer.unref();
}

/** Polls until none of `pgids` has a live member or `timeoutMs` passed; returns those still alive. */
async function waitForGroups(pgids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const live = await liveGroups(pgids);
    if (live.size === 0 || Date.now() >= deadline) return [...live];
    await delay(pollMs);
  }
}

/**
 * Which of `pgids` still have a member that is not a zombie. Zombies do not count: they run nothing, and one whose
 * parent never reaps it (wsd as a container's pid 1) would otherwise look alive forever.
 */
async function liveGroups(pgids: number[]): Promise<Set<number>> {
  const candidates = pgids.filter((pgid) => killQuietly(-pgid, 0));
  if (candidates.length === 0 || !existsSync('/proc/self/stat')) return new Set(candidates);
  const wanted = new Set(candidates);
  const live = new Set<number>();
  for (const p of await scanProcesses()) if (wanted.has(p.pgid)) live.add(p.pgid);
  return live;
}

interface ProcessInfo {
  pid: number;
  pgid: number;
  comm: string;
}

/** Live (not zombie) processes from /proc/<pid>/stat: all of them, or those of `only`. [] without /proc. */
async function scanProcesses(only?: number[]): Promise<ProcessInfo[]> {
  const pids = only ?? (await readdir('/proc').catch(() => [] as string[])).filter((n) => /^\d+$/.test(n)).map(Number);
  const infos = await Promise.all(
    pids.map(async (pid) => {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
      if (!stat) return undefined;
      // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ')'.
      const close = stat.lastIndexOf(')');
      const [state, , pgrp] = stat.slice(close + 2).split(' ');
      if (state === 'Z' || state === 'X' || state === 'x') return undefined;
      return { pid, pgid: Number(pgrp), comm: stat.slice(stat.indexOf('(') + 1, close) };
    }),
  );
  return infos.filter((i): i is ProcessInfo => i !== undefined);
}

async function commandOf(pid: number, fallback: string): Promise<string> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`).catch(() => undefined);
  const text = cmdline?.toString('utf8').replace(/\0+$/, '').replaceAll('\0', ' ');
  return (text || fallback).slice(0, 200);
}

/** True if the NUL-separated `environ` holds exactly `entry` (which ends in NUL) as one of its variables. */
function hasEntry(environ: Buffer, entry: Buffer): boolean {
  for (let at = environ.indexOf(entry); at !== -1; at = environ.indexOf(entry, at + 1)) {
    if (at === 0 || environ[at - 1] === 0) return true;
  }
  // The last variable may lack its terminating NUL.
  const last = entry.subarray(0, entry.length - 1);
  return environ.length >= last.length && environ.subarray(environ.length - last.length).equals(last) && (environ.length === last.length || environ[environ.length - last.length - 1] === 0);
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
