import { constants as fsConstants } from 'node:fs';
import { chown, lstat, mkdtemp, open, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { checkoutUser, runGit } from './git.js';
import { filteredConfig } from './git-config.js';
import { realFolderInside } from './inside-folder.js';
import type { InitializerLookup } from '../initializer/content-initializer.js';
import type { GitStatusReport } from '../workspace/workspace-service.js';

/** Lists are capped so a huge dirty tree cannot blow up a response; the totals say how many there were. */
export const gitStatusCap = 100;

/**
 * The git status of a checkout, as DisposeWorkspace reports it: branch, latest commit, uncommitted and untracked
 * files (`git status --porcelain=v2 --branch -uall`), unpushed commits (`git log --branches --not --remotes`).
 * A folder that is not a repository gives undefined, not an error.
 */
export async function readGitStatus(checkout: string, options: { user?: { uid: number; gid: number }; timeoutMs?: number } = {}): Promise<GitStatusReport | undefined> {
  // A real .git folder: a gitfile (`gitdir: /elsewhere`) or a symlink would point git at another repository.
  const dotGit = path.join(checkout, '.git');
  if (!(await lstat(dotGit).catch(() => undefined))?.isDirectory()) return undefined;
  // One read per checkout at a time: describe calls arriving meanwhile share it (a slow or stuck read must not pile up).
  let pending = inFlight.get(checkout);
  if (!pending) {
    pending = (async () => {
      if (!(await plainRepository(dotGit))) return undefined;
      const user = await checkoutUser(checkout, options.user);
      // One deadline for everything, the shadow folder included: the user's own processes can swap a file for a fifo.
      const signal = AbortSignal.timeout(options.timeoutMs ?? statusTimeoutMs);
      let shadow: string | undefined;
      try {
        // The checkout's own config was written by its user: git here reads a shadow git folder instead — the real
        // objects, refs and index, and a config that holds only settings status needs and that run nothing.
        shadow = await shadowGitDir(dotGit, user, signal);
        return await statusOf(checkout, shadow, user, signal);
      } catch {
        return undefined; // timed out (a fifo in the tree, a huge repository) or refused: no status rather than no answer
      } finally {
        if (shadow) await rm(shadow, { recursive: true, force: true });
      }
    })();
    inFlight.set(checkout, pending);
    void pending.finally(() => inFlight.delete(checkout));
  }
  return pending;
}

/** A status read that takes longer is given up (its git processes killed): describe and dispose must answer. */
const statusTimeoutMs = 20_000;
const inFlight = new Map<string, Promise<GitStatusReport | undefined>>();

/**
 * Whether a checkout's git folder holds only what it says: refs that are real files (a symlink in `refs/` would
 * report another workspace's branches and commits), no alternates (another repository's objects).
 */
async function plainRepository(dotGit: string): Promise<boolean> {
  const objects = await lstat(path.join(dotGit, 'objects')).catch(() => undefined);
  if (!objects?.isDirectory()) return false;
  for (const name of ['objects/info/alternates', 'objects/info/http-alternates', 'commondir']) {
    if (await lstat(path.join(dotGit, name)).catch(() => undefined)) return false;
  }
  const packed = await lstat(path.join(dotGit, 'packed-refs')).catch(() => undefined);
  if (packed && !packed.isFile()) return false;
  const walk = async (dir: string): Promise<boolean> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => undefined);
    if (!entries) return false;
    for (const entry of entries) {
      if (entry.isDirectory() ? !(await walk(path.join(dir, entry.name))) : !entry.isFile()) return false;
    }
    return true;
  };
  const refs = await lstat(path.join(dotGit, 'refs')).catch(() => undefined);
  return refs?.isDirectory() === true && walk(path.join(dotGit, 'refs'));
}

async function statusOf(checkout: string, gitDir: string, user: { uid: number; gid: number } | undefined, signal: AbortSignal): Promise<GitStatusReport | undefined> {
  // GIT_DIR and GIT_WORK_TREE pin git to this checkout; no optional locks: reading must not write.
  const opts = { cwd: checkout, ...(user ? { user } : {}), env: { GIT_OPTIONAL_LOCKS: '0', GIT_DIR: gitDir, GIT_WORK_TREE: checkout }, signal };
  const safe = ['-c', 'safe.directory=*'];
  // Submodules keep configs of their own (in .git/modules): their work trees are not walked.
  const status = await runGit([...safe, '-c', 'core.quotePath=false', 'status', '--porcelain=v2', '--branch', '-uall', '--ignore-submodules=dirty'], opts);
  if (status.code !== 0) return undefined;
  let branch = '';
  const uncommitted: string[] = [];
  const untracked: string[] = [];
  for (const line of status.stdout.split('\n')) {
    if (line.startsWith('# branch.head ')) branch = line.slice('# branch.head '.length);
    else if (line.startsWith('1 ')) uncommitted.push(line.split(' ').slice(8).join(' '));
    else if (line.startsWith('2 ')) uncommitted.push(line.split(' ').slice(9).join(' ').split('\t')[0]!);
    else if (line.startsWith('u ')) uncommitted.push(line.split(' ').slice(10).join(' '));
    else if (line.startsWith('? ')) untracked.push(line.slice(2));
  }
  if (branch === '(detached)') branch = '';
  const latest = await runGit([...safe, 'log', '--pretty=%H', '-n', '1'], opts);
  const unpushed = await runGit([...safe, 'log', '--pretty=%h: %s', '--branches', '--not', '--remotes'], opts);
  const commits = unpushed.code === 0 ? unpushed.stdout.split('\n').filter(Boolean) : [];
  return {
    branch,
    latestCommit: latest.code === 0 ? latest.stdout.trim() : '',
    uncommittedFiles: uncommitted.slice(0, gitStatusCap),
    untrackedFiles: untracked.slice(0, gitStatusCap),
    unpushedCommits: commits.slice(0, gitStatusCap),
    totalUncommittedFiles: uncommitted.length,
    totalUntrackedFiles: untracked.length,
    totalUnpushedCommits: commits.length,
  };
}

/**
 * The status DisposeWorkspace reports for a workspace: the first checkout location its initializer plugin names
 * (`checkoutLocations`; the folder itself when it names none), read as `user`. A location outside the folder is
 * never read. Core does not parse plugin specs: the plugin that owns the spec says where its checkouts are.
 */
export async function workspaceGitStatus(
  folder: string,
  initializer: { kind: string; spec: unknown },
  initializers: InitializerLookup,
  user?: { uid: number; gid: number },
): Promise<GitStatusReport | undefined> {
  let location: string | undefined;
  try {
    const plugin = initializers.get(initializer.kind);
    location = plugin.checkoutLocations?.(initializer.spec, initializers)[0];
  } catch {
    location = undefined; // the kind is no longer enabled: read the folder itself
  }
  // Resolved on disk: the user may have replaced the checkout by a symlink to another folder of the node.
  const checkout = location === undefined ? folder : await realFolderInside(folder, location);
  if (checkout === undefined) return undefined;
  return readGitStatus(checkout, user ? { user } : {});
}

/** Entries of a git folder that status and log read; everything else (config, hooks, commondir, …) stays out. */
const shadowEntries = ['refs', 'objects', 'index', 'packed-refs', 'shallow', 'info', 'modules'];
/** HEAD is copied, not linked: git accepts a symlinked HEAD only when it points into `refs/`. */
const maxHeadBytes = 4096;

/**
 * Settings of a checkout's own config that change what status reports, none of which runs anything or points git
 * elsewhere. `extensions.*` beyond the object format, `core.worktree`, `include.*`, filters, fsmonitor, gpg,
 * pagers, `log.showSignature`… are not copied.
 */
const statusKeys =
  /^(core\.(repositoryformatversion|bare|ignorecase|precomposeunicode|filemode|symlinks|autocrlf|eol|safecrlf|checkstat|trustctime|untrackedcache|splitindex|sparsecheckout|sparsecheckoutcone|abbrev)|extensions\.objectformat|index\.(version|skiphash|sparse)|status\.(showuntrackedfiles|renames|renamelimit)|diff\.(renames|renamelimit)|branch\.[^\n]+\.(remote|merge)|remote\.[^\n]+\.(url|fetch)|submodule\.[^\n]+\.(url|path|active|ignore))$/;

/**
 * A temp git folder that links the real one's data entries and carries a config rewritten from the real config
 * file (read without includes: reading config runs nothing) with only {@link statusKeys}. Given to `user`.
 */
async function shadowGitDir(dotGit: string, user: { uid: number; gid: number } | undefined, signal: AbortSignal): Promise<string> {
  const shadow = await mkdtemp(path.join(os.tmpdir(), 'wsd-git-status-'));
  try {
    for (const name of shadowEntries) {
      const info = await lstat(path.join(dotGit, name)).catch(() => undefined);
      if (info && (info.isFile() || info.isDirectory())) await symlink(path.join(dotGit, name), path.join(shadow, name));
    }
    // Opened without following a link and without blocking on a fifo, then checked on the open handle: the file can
    // be swapped between a check by path and the read (a symlink to /etc/shadow would be copied as root).
    const head = await open(path.join(dotGit, 'HEAD'), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK).catch(() => undefined);
    if (head) {
      try {
        const info = await head.stat();
        if (info.isFile() && info.size <= maxHeadBytes) await writeFile(path.join(shadow, 'HEAD'), await head.readFile());
      } finally {
        await head.close();
      }
    }
    const { text } = await filteredConfig(path.join(dotGit, 'config'), (key) => statusKeys.test(key), { ...(user ? { user } : {}), signal });
    await writeFile(path.join(shadow, 'config'), text, { mode: 0o600 });
    if (user) {
      await chown(shadow, user.uid, user.gid);
      await chown(path.join(shadow, 'config'), user.uid, user.gid);
    }
    return shadow;
  } catch (error) {
    await rm(shadow, { recursive: true, force: true });
    throw error;
  }
}
