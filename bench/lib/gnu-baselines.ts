import { spawn } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { seconds } from './stats.js';

/** What a daemon leaves out of every archive; the baselines leave it out too. */
const readyMarker = './.gitpod/ready';

/** Runs a bash script with positional arguments ($1, $2, …: no quoting of paths), rejecting with its stderr. */
export async function bash(script: string, args: string[] = []): Promise<void> {
  const child = spawn('bash', ['-euo', 'pipefail', '-c', script, 'bench', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`bash -c '${script}' ${args.join(' ')} failed (${code}): ${stderr.trim()}`);
}

export interface ArchiveTiming {
  seconds: number;
  bytes: number;
}

/**
 * `tar -cf - . | zstd -1 -T0 > archive`, then fsync of the archive: wsd's backup is durable when it returns, so the
 * fair baseline is too. With `snar`, a GNU listed-incremental archive against that snapshot file (updated).
 */
export async function tarZstd(folder: string, archive: string, options: { snar?: string } = {}): Promise<ArchiveTiming> {
  const incremental = options.snar ? ['-g', options.snar] : [];
  const time = await seconds(() =>
    bash(`tar ${incremental.length ? '-g "$4"' : ''} -cf - -C "$1" --exclude="$3" . | zstd -q -1 -T0 -o "$2" && sync "$2"`, [folder, archive, readyMarker, ...(options.snar ? [options.snar] : [])]),
  );
  return { seconds: time, bytes: statSync(archive).size };
}

/** `zstd -d -c archive | tar -xf -` into `target` (created empty). */
export async function untarZstd(archive: string, target: string): Promise<number> {
  mkdirSync(target, { recursive: true });
  return seconds(() => bash('zstd -q -d -c "$1" | tar -xf - -C "$2"', [archive, target]));
}

/** Flushes dirty pages, so one measurement's writeback does not land in the next one's time. */
export const syncDisks = (): Promise<void> => bash('sync');
