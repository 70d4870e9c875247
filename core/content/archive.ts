import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { WsdError } from '../errors.js';
import { captureTail, exitOf } from './child-process.js';

/** The one archive format: a POSIX (pax) tar stream compressed with zstd; `tar --zstd -xf` reads it. */
export const archiveFormat = 'tar+zstd';

export interface ArchiveStats {
  /** Entries in the archive (files, folders, links), the root folder included. */
  files: number;
  /** Bytes of the tar stream before compression. */
  bytesUncompressed: number;
  /** Non-fatal warnings from tar (files that changed while being read). */
  warnings: string[];
}

export interface ArchiveStream {
  /** The compressed archive, of unknown length; errors if tar or zstd fail. */
  stream: Readable;
  /**
   * Settles once both tar and zstd have exited. Only a resolved `done` means the archive is complete: callers must
   * await it before making the archive current.
   */
  done: Promise<ArchiveStats>;
}

/**
 * Archives the content of `dir` by streaming GNU tar through zstd — no temporary copy of the workspace.
 * GNU tar handles what a workspace holds: symlinks, hard links, empty folders, modes, mtimes, long and unicode names,
 * files over 8 GiB (pax headers) and sparse files.
 */
export function createArchive(dir: string, options: { level?: number } = {}): ArchiveStream {
  const tar = spawn(
    'tar',
    ['--create', '--file=-', '--format=posix', '--numeric-owner', '--sparse', '--verbose', '--directory', dir, '.'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const zstd = spawn('zstd', ['-q', `-${options.level ?? 1}`, '-T0', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const output = new PassThrough();
  const zstdErr = captureTail(zstd.stderr);

  // With the archive on stdout, tar lists members on stderr ("./name", newlines escaped); the rest are messages.
  let files = 0;
  const messages: string[] = [];
  createInterface({ input: tar.stderr! }).on('line', (line) => {
    if (line === '.' || line.startsWith('./')) files++;
    else if (messages.length < 50) messages.push(line);
  });
  let bytesUncompressed = 0;
  tar.stdout!.on('data', (chunk: Buffer) => (bytesUncompressed += chunk.length));

  const feed = pipeline(tar.stdout!, zstd.stdin!).catch(() => {}); // failures surface through the exit codes
  zstd.stdout!.pipe(output);

  const done = (async () => {
    const [tarCode, zstdCode] = await Promise.all([exitOf(tar, 'tar'), exitOf(zstd, 'zstd'), feed]);
    // tar exits 1 when files changed while being read: normal for a live workspace, the archive is still valid.
    if (tarCode !== 0 && tarCode !== 1) throw new Error(`tar failed (exit ${tarCode}): ${messages.join('; ')}`);
    if (zstdCode !== 0) throw new Error(`zstd failed (exit ${zstdCode}): ${zstdErr()}`);
    return { files, bytesUncompressed, warnings: tarCode === 1 ? messages : [] };
  })();
  done.catch((error: unknown) => {
    tar.kill();
    zstd.kill();
    output.destroy(new WsdError('INTERNAL', `archiving ${dir}: ${(error as Error).message}`, { cause: error }));
  });
  output.once('close', () => {
    // A consumer that gave up (storage failed) must not leave tar running over the workspace.
    if (!output.readableEnded) {
      tar.kill();
      zstd.kill();
    }
  });
  return { stream: output, done };
}

/**
 * Extracts an archive stream into `dir` (which must exist). Rejects if the stream, zstd or tar fail; what was
 * extracted before the failure stays, so callers extract into a folder they can wipe.
 */
export async function extractArchive(body: Readable, dir: string): Promise<void> {
  const zstd = spawn('zstd', ['-d', '-q', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const sameOwner = process.getuid?.() === 0 ? ['--same-owner', '--numeric-owner'] : ['--no-same-owner'];
  const tar = spawn('tar', ['--extract', '--file=-', '--directory', dir, '--same-permissions', ...sameOwner], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  const zstdErr = captureTail(zstd.stderr);
  const tarErr = captureTail(tar.stderr);
  const exits = Promise.all([exitOf(zstd, 'zstd'), exitOf(tar, 'tar')]);
  try {
    await Promise.all([pipeline(body, zstd.stdin!), pipeline(zstd.stdout!, tar.stdin!)]);
  } catch (error) {
    zstd.kill();
    tar.kill();
    await exits.catch(() => {});
    if (error instanceof WsdError) throw error;
    throw new WsdError('DATA_LOSS', `restoring archive: ${zstdErr() || tarErr() || (error as Error).message}`, { cause: error });
  }
  const [zstdCode, tarCode] = await exits;
  if (zstdCode !== 0) throw new WsdError('DATA_LOSS', `restoring archive: zstd failed (exit ${zstdCode}): ${zstdErr()}`);
  if (tarCode !== 0) throw new WsdError('DATA_LOSS', `restoring archive: tar failed (exit ${tarCode}): ${tarErr()}`);
}
