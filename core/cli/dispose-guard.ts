import { createInterface } from 'node:readline/promises';
import type { WorkspaceDetail__Output } from '../api/generated/wsd/v1/WorkspaceDetail.js';

/** Names listed per kind of work at risk; the totals say how many there are in all. */
const listed = 5;

/**
 * What a dispose of this workspace would throw away — uncommitted and untracked files and unpushed commits of its
 * first checkout, from the git status describe reports — one phrase per kind, or none when nothing is known to be
 * at risk: a final backup keeps it all (unless remote storage is disabled for the workspace: the daemon then skips
 * the backup), and a folder that is not a git repository has no status to judge by.
 */
export function workAtRisk(detail: WorkspaceDetail__Output, backup: boolean): string[] {
  if (backup && !detail.remote_storage_disabled) return [];
  const git = detail.git_status;
  if (!git) return [];
  const phrases: string[] = [];
  const add = (count: number, what: string, names: string[]) => {
    if (count > 0) phrases.push(`${count} ${what}${count === 1 ? '' : 's'} (${names.slice(0, listed).join(', ')}${count > listed ? ', …' : ''})`);
  };
  add(git.total_uncommited_files, 'uncommitted file', git.uncommited_files);
  add(git.total_untracked_files, 'untracked file', git.untracked_files);
  add(git.total_unpushed_commits, 'unpushed commit', git.unpushed_commits);
  return phrases;
}

/** The warning that names what would be lost (and why a backup cannot keep it, when it cannot). */
export function riskWarning(id: string, detail: WorkspaceDetail__Output, risk: string[]): string {
  const branch = detail.git_status?.branch ? ` on branch ${detail.git_status.branch}` : '';
  const noBackup = detail.remote_storage_disabled ? ' (remote storage is disabled for it: a final backup cannot keep it)' : '';
  return `workspace ${id} has work that disposing it would throw away${branch}: ${risk.join(', ')}${noBackup}`;
}

/** What decides, in the words of the flags. */
export function riskChoices(detail: WorkspaceDetail__Output): string {
  return detail.remote_storage_disabled ? 'pass --force to dispose anyway' : 'pass --backup to keep it in a final backup, or --force to dispose anyway';
}

/** Asks on the terminal whether to go ahead; anything but y/yes is no. */
export async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}
