import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { checkoutUser, runGit, type GitOptions } from './git.js';
import { realFolderInside } from './inside-folder.js';
import type { GitStatusReport } from '../workspace/workspace-service.js';

/** Lists are capped so a huge dirty tree cannot blow up a response; the totals say how many there were. */
export const gitStatusCap = 100;

/**
 * The git status of a checkout, as DisposeWorkspace reports it: branch, latest commit, uncommitted and untracked
 * files (`git status --porcelain=v2 --branch -uall`), unpushed commits (`git log --branches --not --remotes`).
 * A folder that is not a repository gives undefined, not an error.
 */
export async function readGitStatus(checkout: string, options: { user?: { uid: number; gid: number } } = {}): Promise<GitStatusReport | undefined> {
  // A real .git folder: a gitfile (`gitdir: /elsewhere`) or a symlink would point git at another repository.
  const dotGit = path.join(checkout, '.git');
  if (!(await lstat(dotGit).catch(() => undefined))?.isDirectory()) return undefined;
  const user = await checkoutUser(checkout, options.user);
  // GIT_DIR and GIT_WORK_TREE pin git to this checkout whatever its config says (`core.worktree` could point at
  // another folder of the node); no optional locks: reading must not write.
  const opts = { cwd: checkout, ...(user ? { user } : {}), env: { GIT_OPTIONAL_LOCKS: '0', GIT_DIR: dotGit, GIT_WORK_TREE: checkout } };
  const safe = ['-c', `safe.directory=${checkout}`, ...(await neutralizedFilters(opts))];
  const status = await runGit([...safe, '-c', 'core.quotePath=false', 'status', '--porcelain=v2', '--branch', '-uall'], opts);
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

/** The first checkout location named by an initializer spec (git, composite, prebuild), relative to the folder. */
export function firstCheckoutLocation(initializer: { kind: string; spec: unknown }): string | undefined {
  const spec = initializer.spec as Record<string, unknown> | undefined;
  if (!spec) return undefined;
  if (initializer.kind === 'git') return (spec.checkout_location as string | undefined) ?? '';
  if (initializer.kind === 'prebuild') {
    const first = (spec.git as Array<Record<string, unknown>> | undefined)?.[0];
    return first ? ((first.checkout_location as string | undefined) ?? '') : undefined;
  }
  if (initializer.kind === 'backup') return (spec.checkout_location as string | undefined) || undefined;
  if (initializer.kind === 'composite') {
    for (const child of (spec.initializer as Array<Record<string, unknown>> | undefined) ?? []) {
      const kind = child.spec as string | undefined;
      if (!kind) continue;
      const found = firstCheckoutLocation({ kind, spec: child[kind] });
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/**
 * The status DisposeWorkspace reports for a workspace: its first checkout location (or the folder itself), read as
 * `user`. A location outside the folder is never read.
 */
export async function workspaceGitStatus(folder: string, initializer: { kind: string; spec: unknown }, user?: { uid: number; gid: number }): Promise<GitStatusReport | undefined> {
  const location = firstCheckoutLocation(initializer);
  // Resolved on disk: the user may have replaced the checkout by a symlink to another folder of the node.
  const checkout = location === undefined ? folder : await realFolderInside(folder, location);
  if (checkout === undefined) return undefined;
  return readGitStatus(checkout, user ? { user } : {});
}

/**
 * `-c` overrides that turn every filter driver the repository's config defines into `cat`: `git status` may run a
 * clean filter to compare a file, and the user wrote that config. (Hooks and fsmonitor are off for every git run.)
 */
async function neutralizedFilters(opts: GitOptions): Promise<string[]> {
  const listed = await runGit(['config', '--includes', '--name-only', '--get-regexp', '^filter\\.'], opts);
  const drivers = new Set(listed.stdout.split('\n').map((key) => /^filter\.(.+)\.[^.]+$/.exec(key)?.[1]).filter((name): name is string => Boolean(name)));
  return [...drivers].flatMap((name) => ['-c', `filter.${name}.clean=cat`, '-c', `filter.${name}.smudge=cat`, '-c', `filter.${name}.process=`, '-c', `filter.${name}.required=false`]);
}
