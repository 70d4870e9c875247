import { lstat } from 'node:fs/promises';
import { WsdError } from '../errors.js';
import { runGit } from './git.js';

/**
 * The text of a fresh git config holding only the keys of `file` that `keep` accepts. The file is read without
 * includes (reading config runs nothing); keys are lowercased for `keep`. Writers replace the whole file with this
 * text — removing keys one by one (`git config --unset`) fails open when something blocks the edit (a planted
 * `config.lock`). Returns the text and the keys left out. `user`: who reads it (the file is someone's content);
 * `signal`: a deadline (it may have been swapped for a fifo).
 */
export async function filteredConfig(
  file: string,
  keep: (key: string) => boolean,
  options: { user?: { uid: number; gid: number }; signal?: AbortSignal } = {},
): Promise<{ text: string; dropped: string[] }> {
  const info = await lstat(file).catch(() => undefined);
  if (!info) return { text: '', dropped: [] };
  if (!info.isFile()) throw new WsdError('FAILED_PRECONDITION', `${file} is not a regular file`);
  const listed = await runGit(['config', '--file', file, '--no-includes', '--list', '-z'], { cwd: '/', ...options });
  if (listed.code !== 0) throw new WsdError('FAILED_PRECONDITION', `${file} cannot be read as a git config: ${listed.stderr.trim().split('\n').pop() ?? ''}`);
  const entries: Array<[string, string]> = [];
  const dropped = new Set<string>();
  for (const entry of listed.stdout.split('\0').filter(Boolean)) {
    const newline = entry.indexOf('\n');
    const [key, value] = newline === -1 ? [entry, 'true'] : [entry.slice(0, newline), entry.slice(newline + 1)];
    if (keep(key.toLowerCase())) entries.push([key, value]);
    else dropped.add(key);
  }
  return { text: configText(entries), dropped: [...dropped] };
}

/** Git config file text for `section[.subsection].name = value` entries, values quoted and escaped. */
function configText(entries: Array<[string, string]>): string {
  const lines: string[] = [];
  for (const [key, value] of entries) {
    const first = key.indexOf('.');
    const last = key.lastIndexOf('.');
    const section = key.slice(0, first);
    const subsection = first === last ? undefined : key.slice(first + 1, last);
    const header = subsection === undefined ? `[${section}]` : `[${section} "${subsection.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"]`;
    const quoted = `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\t/g, '\\t')}"`;
    lines.push(header, `\t${key.slice(last + 1)} = ${quoted}`);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}
