import { existsSync } from 'node:fs';
import path from 'node:path';
import { checkoutUser, runGit } from './git.js';
import { insideFolder } from './inside-folder.js';
import type { GitStatusReport } from '../workspace/workspace-service.js';

/** Lists are capped so a huge dirty tree cannot blow up a response; the totals say how many there were. */
export const gitStatusCap = 100;

/**
 * The git status of a checkout, as DisposeWorkspace reports it: branch, latest commit, uncommitted and untracked
 * files (`git status --porcelain=v2 --branch -uall`), unpushed commits (`git log --branches --not --remotes`).
 * A folder that is not a repository gives undefined, not an error.
 */
export async function readGitStatus(checkout: string, options: { user?: { uid: number; gid: number } } = {}): Promise<GitStatusReport | undefined> {
  if (!existsSync(path.join(checkout, '.git'))) return undefined;
  const user = await checkoutUser(checkout, options.user);
  const opts = { cwd: checkout, ...(user ? { user } : {}), env: { GIT_OPTIONAL_LOCKS: '0' } };
  const status = await runGit(['-c', 'core.quotePath=false', 'status', '--porcelain=v2', '--branch', '-uall'], opts);
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
  const latest = await runGit(['log', '--pretty=%H', '-n', '1'], opts);
  const unpushed = await runGit(['log', '--pretty=%h: %s', '--branches', '--not', '--remotes'], opts);
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
  let checkout: string;
  try {
    checkout = location === undefined ? folder : insideFolder(folder, location, 'checkout_location');
  } catch {
    return undefined;
  }
  return readGitStatus(checkout, user ? { user } : {});
}
