import { fchown } from 'node:fs';
import { chown } from 'node:fs/promises';
import { promisify } from 'node:util';
import { createInterface } from 'node:readline';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { WsdError, isAbortError, isWsdError } from '../errors.js';
import { spawnTracked } from '../process/child-processes.js';
import { ChildStdin, captureTail, exitOf } from './child-process.js';
import { TarInspector } from './tar-inspector.js';

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
  /** Entries tar has archived so far (for progress reports). */
  filesSoFar(): number;
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
export function createArchive(dir: string, options: { level?: number; exclude?: string[] } = {}): ArchiveStream {
  const zstd = spawnTracked('zstd', ['-q', `-${options.level ?? 1}`, '-T0', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  // tar writes straight into zstd's stdin (no hop through Node); --totals reports the uncompressed size.
  // atime/ctime pax records would make every archive of an unchanged tree differ, for no restore value.
  const excludes = (options.exclude ?? []).map((p) => `--exclude=./${p}`);
  const tar = spawnTracked(
    'tar',
    ['--create', '--file=-', '--format=posix', '--pax-option=delete=atime,delete=ctime', '--numeric-owner', '--sparse', '--verbose', '--totals', '--anchored', ...excludes, '--directory', dir, '.'],
    { stdio: ['ignore', zstd.stdin!, 'pipe'] },
  );
  // Our copy of the pipe's write end must go, or zstd never sees end of input.
  zstd.stdin!.destroy();
  const output = new PassThrough();
  const zstdErr = captureTail(zstd.stderr);

  // With the archive on stdout, tar lists members on stderr ("./name", newlines escaped); the rest are messages.
  let files = 0;
  let bytesUncompressed = 0;
  const messages: string[] = [];
  createInterface({ input: tar.stderr! }).on('line', (line) => {
    const totals = /^Total bytes written: (\d+)/.exec(line);
    if (totals) bytesUncompressed = Number(totals[1]);
    else if (line === '.' || line.startsWith('./')) files++;
    else if (messages.length < 50) messages.push(line);
  });
  zstd.stdout!.pipe(output);

  const done = (async () => {
    const [tarCode, zstdCode] = await Promise.all([exitOf(tar, 'tar'), exitOf(zstd, 'zstd')]);
    // tar exits 1 when files changed while being read: normal for a live workspace, the archive is still valid.
    if (tarCode !== 0 && tarCode !== 1) throw new Error(`tar failed (exit ${tarCode}): ${messages.join('; ')}`);
    if (zstdCode !== 0) throw new Error(`zstd failed (exit ${zstdCode}): ${zstdErr()}`);
    // The restore of this archive is bounded by this figure: without it the archive could never be restored.
    if (bytesUncompressed <= 0) throw new Error('tar reported no "Total bytes written"');
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
  return { stream: output, done, filesSoFar: () => files };
}

export interface ExtractOptions {
  /** Give everything to this user (only given when wsd runs as root); otherwise root keeps the archived owners. */
  owner?: { uid: number; gid: number };
  /** Let device nodes and fifos through (refused by default). */
  allowSpecialFiles?: boolean;
  /** Keep setuid/setgid bits of files (cleared by default). */
  preserveSetuid?: boolean;
}

/** Bounds of one extraction (see TarInspector): the manifest's recorded stream size, the workspace quota. */
export interface ExtractLimits {
  maxStreamBytes?: number;
  maxDataBytes?: number;
  dataLimitReason?: string;
}

/**
 * Extracts an archive stream into `dir` (which must exist and be empty). Every tar header is inspected on the way
 * (TarInspector): a member that could write outside `dir`, or a device/fifo, stops the restore with `DATA_LOSS`
 * before tar sees it. Rejects if the stream, zstd or tar fail: `DATA_LOSS` for what the archive is to blame for; a
 * failure of `body` itself (storage) as the WsdError it is, otherwise `UNAVAILABLE`. What was extracted before the
 * failure stays, so callers extract into a folder they wipe on failure. Returns the number of members extracted.
 */
export async function extractArchive(body: Readable, dir: string, options: ExtractOptions & ExtractLimits & { dirFd?: number } = {}): Promise<{ members: number }> {
  const owner = options.owner; // set only when wsd is root (see core/daemon.ts)
  // With `dirFd` (a descriptor open on `dir`), the folder is changed and reached only through it: a name can be
  // swapped for a symlink by whoever can write its parent, a descriptor cannot. tar gets it as its fd 3.
  const dirFd = options.dirFd;
  if (owner) await (dirFd !== undefined ? promisify(fchown)(dirFd, owner.uid, owner.gid) : chown(dir, owner.uid, owner.gid));
  const directory = dirFd !== undefined ? '/proc/self/fd/3' : dir;
  // Root without an owner keeps the archived owners; everyone else owns what they extract.
  const ownership = !owner && process.getuid?.() === 0 ? ['--same-owner', '--numeric-owner'] : ['--no-same-owner'];
  const zstd = spawnTracked('zstd', ['-d', '-q', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  // Running tar as the workspace user also means the kernel, not only the inspector, keeps it out of other folders.
  const tar = spawnTracked('tar', ['--extract', '--file=-', '--directory', directory, '--same-permissions', '--delay-directory-restore', ...ownership], {
    stdio: ['pipe', 'ignore', 'pipe', ...(dirFd !== undefined ? [dirFd] : [])],
    ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
  });
  const inspector = new TarInspector({
    allowSpecialFiles: options.allowSpecialFiles ?? false,
    preserveSetuid: options.preserveSetuid ?? false,
    ...(options.maxStreamBytes !== undefined ? { maxStreamBytes: options.maxStreamBytes } : {}),
    ...(options.maxDataBytes !== undefined ? { maxDataBytes: options.maxDataBytes } : {}),
    ...(options.dataLimitReason !== undefined ? { dataLimitReason: options.dataLimitReason } : {}),
  });
  // tar exits once it has read the end-of-archive record, and node then closes its stdin: possibly before the
  // inspector has ended (zstd still flushing, trailing padding). That is not a failure (tar's exit code says how it
  // went), but a plain pipeline would call it "Premature close" — a spurious DATA_LOSS on a good archive.
  const toTar = new ChildStdin(tar.stdin!, () => inspector.reachedEnd);
  const zstdErr = captureTail(zstd.stderr);
  const tarErr = captureTail(tar.stderr);
  const exits = Promise.all([exitOf(zstd, 'zstd'), exitOf(tar, 'tar')]);
  exits.catch(() => {}); // awaited below; a spawn failure must not become an unhandled rejection meanwhile
  try {
    await Promise.all([pipeline(fromSource(body), zstd.stdin!), pipeline(zstd.stdout!, inspector, toTar)]);
  } catch (error) {
    zstd.kill();
    tar.kill();
    await exits.catch(() => {});
    if (error instanceof SourceFailure) throw sourceError(error.cause);
    if (isWsdError(error)) throw error;
    if (isAbortError(error)) throw new WsdError('CANCELLED', 'restoring archive: cancelled', { cause: error });
    if (outOfSpace(tarErr())) throw new WsdError('RESOURCE_EXHAUSTED', `restoring archive: out of disk space or quota: ${tarErr()}`, { cause: error });
    throw new WsdError('DATA_LOSS', `restoring archive: ${zstdErr() || tarErr() || (error as Error).message}`, { cause: error });
  }
  const [zstdCode, tarCode] = await exits;
  if (zstdCode !== 0) throw new WsdError('DATA_LOSS', `restoring archive: zstd failed (exit ${zstdCode}): ${zstdErr()}`);
  // A full disk is not a corrupt archive: the caller may free space or raise the quota and retry.
  if (tarCode !== 0 && outOfSpace(tarErr())) throw new WsdError('RESOURCE_EXHAUSTED', `restoring archive: out of disk space or quota: ${tarErr()}`);
  if (tarCode !== 0) throw new WsdError('DATA_LOSS', `restoring archive: tar failed (exit ${tarCode}): ${tarErr()}`);
  if (toTar.closedEarly && !inspector.reachedEnd) throw new WsdError('DATA_LOSS', 'restoring archive: tar stopped reading before the end of the archive');
  return { members: inspector.members };
}

/** A failure of the stream the archive is read from (storage), as opposed to one of zstd, the inspector or tar. */
class SourceFailure extends Error {}

/**
 * `body`, with its own failures told apart: when the transfer breaks, zstd sees its input end mid-frame and
 * complains, so the pipeline's error alone would blame the archive for what storage did.
 */
async function* fromSource(body: Readable): AsyncGenerator<Buffer> {
  try {
    // Iterating also turns a body that closes before its end into an error (ERR_STREAM_PREMATURE_CLOSE).
    for await (const chunk of body) yield chunk as Buffer;
  } catch (error) {
    throw new SourceFailure('reading the archive failed', { cause: error });
  }
}

/**
 * A broken transfer says nothing about the archive (its digest is checked after a complete read): it is the
 * storage's failure, UNAVAILABLE and worth retrying, never DATA_LOSS. Backends report theirs as WsdErrors already.
 */
function sourceError(cause: unknown): WsdError {
  if (isWsdError(cause)) return cause;
  if (isAbortError(cause)) return new WsdError('CANCELLED', 'restoring archive: cancelled', { cause });
  return new WsdError('UNAVAILABLE', `restoring archive: reading it from storage failed midway: ${(cause as Error).message}`, { cause });
}

function outOfSpace(stderr: string): boolean {
  // GNU tar reports a full disk as "Cannot write: No space left on device" or as a short write.
  return /No space left on device|Disk quota exceeded|Wrote only \d+ of \d+ bytes/.test(stderr);
}

