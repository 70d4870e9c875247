import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { closeSync, constants, fchmodSync, fchownSync, futimesSync, openSync, writeSync } from 'node:fs';
import { chmod, lchown, link, lutimes, mkdir, open, symlink, utimes, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { WsdError, isWsdError, toWsdError } from '../../errors.js';
import type { ProgressReporter } from '../../initializer/content-initializer.js';
import type { StorageBackend } from '../../storage/storage-backend.js';
import type { ExtractOptions } from '../archive.js';
import { Semaphore, mapLimit } from '../semaphore.js';
import { readBounded } from './read-bounded.js';
import { packKey } from './repository-layout.js';
import type { ChunkRef, Tree, TreeEntry } from './tree.js';
import { decompressFrame } from './zstd-frames.js';

/** Ranged reads merge neighbouring chunks across gaps up to this size, into reads of at most `maxRangeBytes`. */
const maxGapBytes = 1024 * 1024;
const maxRangeBytes = 8 * 1024 * 1024;
const maxRangeRawBytes = 32 * 1024 * 1024;
const fetchAttempts = 4;

/** What the restored folder itself gets: the tree root's mode, owner (under the ownership policy) and mtime in seconds. */
export interface RootMetadata {
  mode: number;
  uid?: number;
  gid?: number;
  mtime: number;
}

interface FileState {
  entry: TreeEntry;
  abs: string;
  /** Stored chunks still to write. */
  remaining: number;
  handle?: Promise<FileHandle>;
}

interface Target {
  file: FileState;
  offset: number;
}

/**
 * Writes a validated tree (decodeTree) into `dir`, a fresh, empty folder nobody else writes to: folders first, then
 * file content from parallel ranged pack reads (each chunk checked against its sha256 before a byte of it is written),
 * files written concurrently, metadata last (folders deepest first). Nothing is created below a symlink (decodeTree
 * guarantees each parent is a folder of the tree) and every file is created with O_EXCL | O_NOFOLLOW.
 * A ranged read that fails midway (a dropped connection) is retried from its start: a restore resumes per range,
 * not from the beginning. All-zero chunks are never fetched or written: a sparse file stays sparse.
 */
export async function restoreTree(options: {
  tree: Tree;
  dir: string;
  storage: StorageBackend;
  owner: string;
  extract: ExtractOptions;
  signal?: AbortSignal | undefined;
  progress?: ProgressReporter | undefined;
  concurrency?: number;
}): Promise<{ members: number; root: RootMetadata }> {
  const { tree, dir, storage, owner, extract, signal } = options;
  const policy = ownership(extract);
  const modeOf = (e: TreeEntry) => (e.type === 'file' && !extract.preserveSetuid ? e.mode & ~0o6000 : e.mode);
  for (const e of tree.entries) {
    if ((e.type === 'fifo' || e.type === 'char' || e.type === 'block') && !extract.allowSpecialFiles) {
      throw new WsdError('DATA_LOSS', `restoring ${JSON.stringify(e.path)}: device nodes and fifos are refused (workspaces.allowSpecialFiles)`);
    }
  }
  const abs = (p: string) => (p === '' ? dir : path.join(dir, p));
  const files: FileState[] = [];

  try {
    // Folders, in tree order (parents first); writable by us until their metadata is set at the end.
    for (const e of tree.entries) if (e.type === 'dir' && e.path !== '') await mkdir(abs(e.path), { mode: 0o700 });
    const fs = new Semaphore(16);
    const simple = tree.entries.filter((e) => e.type === 'symlink' || e.type === 'fifo' || e.type === 'char' || e.type === 'block');
    await Promise.all(simple.map((e) => fs.run(() => createSpecial(e, abs(e.path), modeOf(e), policy))));

    // Which file ranges each stored chunk fills; files with nothing stored are complete once created.
    const targets = new Map<number, Target[]>();
    for (const e of tree.entries) {
      if (e.type !== 'file') continue;
      const file: FileState = { entry: e, abs: abs(e.path), remaining: 0 };
      files.push(file);
      let offset = 0;
      for (const index of e.chunks!) {
        const ref = tree.chunks[index]!;
        if (ref.encoding !== 'zero') {
          file.remaining++;
          let list = targets.get(index);
          if (!list) targets.set(index, (list = []));
          list.push({ file, offset });
        }
        offset += ref.raw;
      }
    }
    const finish = async (file: FileState) => {
      const handle = await openFor(file);
      try {
        await handle.truncate(file.entry.size!); // trailing holes and zero-only files
        if (policy) await handle.chown(...policy(file.entry));
        await handle.chmod(modeOf(file.entry));
        const time = seconds(file.entry.mtimeNs);
        await handle.utimes(time, time);
      } finally {
        await handle.close();
      }
    };
    await Promise.all(files.filter((f) => f.remaining === 0).map((f) => fs.run(() => finish(f))));

    let written = 0;
    const total = tree.chunks.reduce((sum, c, i) => sum + (targets.has(i) ? c.raw * targets.get(i)!.length : 0), 0);
    options.progress?.({ phase: 'restoring', bytes: 0, totalBytes: total });
    /**
     * A file that one chunk fills whole (most files of a workspace are small) is written with synchronous calls:
     * six system calls on the page cache take microseconds, while six promise round trips through the thread pool
     * cost more than the writing (28k small files: ~1 s against ~6 s). Larger files take the shared async handle.
     */
    const writeWhole = (file: FileState, content: Buffer) => {
      const fd = openSync(file.abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        writeSync(fd, content, 0, content.length, 0);
        if (policy) fchownSync(fd, ...policy(file.entry));
        fchmodSync(fd, modeOf(file.entry));
        const time = seconds(file.entry.mtimeNs);
        futimesSync(fd, time, time);
      } finally {
        closeSync(fd);
      }
    };
    await mapLimit(planRanges(tree, targets), options.concurrency ?? 4, async (range) => {
      const data = await fetchRange(storage, packKey(owner, tree.packs[range.pack]!), range.offset, range.length, signal);
      // Decoded all at once (zstd runs on the thread pool), then written.
      const contents = await Promise.all(range.chunks.map((index) => {
        const ref = tree.chunks[index]!;
        return decode(ref, data.subarray(ref.offset - range.offset, ref.offset - range.offset + ref.stored));
      }));
      signal?.throwIfAborted();
      const pending: Array<Promise<void>> = [];
      try {
        for (const [i, index] of range.chunks.entries()) {
          const content = contents[i]!;
          for (const target of targets.get(index)!) {
            written += content.length;
            if (target.offset === 0 && target.file.entry.size === content.length && target.file.handle === undefined) {
              target.file.remaining--;
              writeWhole(target.file, content);
              continue;
            }
            pending.push(
              fs.run(async () => {
                const handle = await openFor(target.file);
                await handle.write(content, 0, content.length, target.offset);
                if (--target.file.remaining === 0) await finish(target.file);
              }),
            );
          }
        }
      } finally {
        // Every write of this range settles before it reports, a failure included: none outlives the restore.
        const outcomes = await Promise.allSettled(pending);
        const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
        if (failed) throw failed.reason;
      }
      options.progress?.({ bytes: written });
    });

    for (const e of tree.entries) if (e.type === 'hardlink') await link(abs(e.target!), abs(e.path));
    // Not the root: `dir` stays wsd's own (0700) until the caller has moved the content out of it, so nobody else can
    // change what is in it meanwhile; the caller gives the root's metadata to the folder it restores into.
    const folders = tree.entries.filter((e) => e.type === 'dir' && e.path !== '').reverse();
    for (const e of folders) {
      const where = abs(e.path);
      if (policy) await lchown(where, ...policy(e));
      await chmod(where, e.mode);
      const time = seconds(e.mtimeNs);
      await utimes(where, time, time);
    }
    const root = tree.entries[0]!;
    const rootOwner = policy?.(root);
    return { members: tree.entries.length, root: { mode: root.mode, ...(rootOwner ? { uid: rootOwner[0], gid: rootOwner[1] } : {}), mtime: seconds(root.mtimeNs) } };
  } catch (error) {
    // Files a failure left half written still hold a descriptor.
    await Promise.all(files.filter((f) => f.remaining > 0 && f.handle).map((f) => f.handle!.then((h) => h.close()).catch(() => {})));
    if (signal?.aborted) throw new WsdError('CANCELLED', 'restoring backup: cancelled', { cause: error });
    if (isWsdError(error)) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || (error as NodeJS.ErrnoException).errno === -122) {
      throw new WsdError('RESOURCE_EXHAUSTED', `restoring backup: out of disk space or quota: ${(error as Error).message}`, { cause: error });
    }
    throw toWsdError(error, 'INTERNAL', 'restoring backup');
  }
}

/** The owner a restored entry gets: the configured workspace user, else (as root) the archived one; else unchanged. */
function ownership(extract: ExtractOptions): ((e: TreeEntry) => [number, number]) | undefined {
  if (extract.owner) return () => [extract.owner!.uid, extract.owner!.gid];
  if (process.getuid?.() === 0) return (e) => [e.uid, e.gid];
  return undefined;
}

function openFor(file: FileState): Promise<FileHandle> {
  // Created once (O_EXCL: never an entry someone else made), then shared by every chunk written into it.
  file.handle ??= open(file.abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  return file.handle;
}

async function createSpecial(e: TreeEntry, where: string, mode: number, policy: ((e: TreeEntry) => [number, number]) | undefined): Promise<void> {
  if (e.type === 'symlink') {
    await symlink(e.target!, where);
  } else {
    const args = ['-m', mode.toString(8), '--', where, e.type === 'fifo' ? 'p' : e.type === 'char' ? 'c' : 'b', ...(e.rdev ? e.rdev.map(String) : [])];
    await promisify(execFile)('mknod', args);
  }
  if (policy) await lchown(where, ...policy(e));
  const time = seconds(e.mtimeNs);
  await lutimes(where, time, time);
}

interface Range {
  pack: number;
  offset: number;
  length: number;
  /** Bytes its chunks decode to. */
  raw: number;
  chunks: number[];
}

/** Stored chunks grouped into few, bounded ranged reads per pack, in pack order. */
function planRanges(tree: Tree, targets: Map<number, Target[]>): Range[] {
  const byPack = new Map<number, number[]>();
  for (const index of targets.keys()) {
    const pack = tree.chunks[index]!.pack;
    let list = byPack.get(pack);
    if (!list) byPack.set(pack, (list = []));
    list.push(index);
  }
  const ranges: Range[] = [];
  for (const [pack, list] of byPack) {
    list.sort((a, b) => tree.chunks[a]!.offset - tree.chunks[b]!.offset);
    let current: Range | undefined;
    for (const index of list) {
      const ref = tree.chunks[index]!;
      const end = ref.offset + ref.stored;
      // Bounded by what it decodes to as well: chunks of nearly all zeros compress ~30 000×, and a range's chunks are
      // decoded together.
      const fits = current && current.raw + ref.raw <= maxRangeRawBytes && end - current.offset <= maxRangeBytes;
      if (current && fits && ref.offset >= current.offset + current.length && ref.offset - (current.offset + current.length) <= maxGapBytes) {
        current.length = end - current.offset;
        current.raw += ref.raw;
        current.chunks.push(index);
      } else if (current && fits && ref.offset < current.offset + current.length) {
        // Two refs to the same bytes (a chunk stored twice under one id): the range already holds them.
        current.length = Math.max(current.length, end - current.offset);
        current.raw += ref.raw;
        current.chunks.push(index);
      } else {
        current = { pack, offset: ref.offset, length: ref.stored, raw: ref.raw, chunks: [index] };
        ranges.push(current);
      }
    }
  }
  return ranges;
}

async function fetchRange(storage: StorageBackend, key: string, offset: number, length: number, signal: AbortSignal | undefined): Promise<Buffer> {
  for (let attempt = 1; ; attempt++) {
    try {
      const data = await readBounded(storage, key, length, signal, { offset, length });
      if (data.length === length) return data;
      if (attempt >= fetchAttempts) throw new WsdError('DATA_LOSS', `pack ${key} holds fewer bytes than the backup's tree says (${offset}+${length})`);
    } catch (error) {
      const transient = isWsdError(error, 'UNAVAILABLE') || (!isWsdError(error) && !signal?.aborted);
      if (!transient || attempt >= fetchAttempts) {
        if (isWsdError(error, 'NOT_FOUND')) throw new WsdError('DATA_LOSS', `pack ${key} of this backup is missing`, { cause: error });
        throw error;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** attempt));
  }
}

/** One chunk's content, fetched alone and verified (for exports, which stream files in tree order). */
export async function readChunk(storage: StorageBackend, owner: string, tree: Tree, index: number, signal?: AbortSignal): Promise<Buffer> {
  const ref = tree.chunks[index]!;
  if (ref.encoding === 'zero') return Buffer.alloc(ref.raw);
  return decode(ref, await fetchRange(storage, packKey(owner, tree.packs[ref.pack]!), ref.offset, ref.stored, signal));
}

async function decode(ref: ChunkRef, stored: Buffer): Promise<Buffer> {
  const content = ref.encoding === 'zstd' ? await decompressFrame(stored, { exact: ref.raw }, `chunk ${ref.id}`) : stored;
  const digest = createHash('sha256').update(content).digest('hex');
  if (digest !== ref.id) throw new WsdError('DATA_LOSS', `chunk ${ref.id} is corrupt (its content hashes to ${digest})`);
  return content;
}

function seconds(mtimeNs: string): number {
  return Number(BigInt(mtimeNs) / 1000n) / 1e6;
}
