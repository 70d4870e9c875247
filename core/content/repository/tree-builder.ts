import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { open, readlink } from 'node:fs/promises';
import path from 'node:path';
import { WsdError } from '../../errors.js';
import type { ProgressReporter } from '../../initializer/content-initializer.js';
import { Semaphore } from '../semaphore.js';
import type { ChunkIndex, ChunkLocation } from './chunk-index.js';
import { maxChunkBytes, minChunkBytes, nextCut } from './chunker.js';
import type { NewChunk, PackWriter } from './pack-writer.js';
import type { Tree, TreeEntry } from './tree.js';
import { scanTree, type ScannedEntry, type ScannedStat } from './tree-scanner.js';
import { compressFrame } from './zstd-frames.js';

/** What a node remembers of the last backup of a workspace: its tree, and inode + ctime of each file then. */
export interface PreviousTree {
  tree: Tree;
  /** path → [inode, ctime ns] at the time the file was read. */
  stats: Map<string, [string, string]>;
}

export interface BuiltTree {
  tree: Tree;
  stats: Map<string, [string, string]>;
  files: number;
  dataBytes: number;
  /** Bytes of file content read (the rest was known unchanged from a stat). */
  readBytes: number;
  warnings: string[];
}

/** Chunks compressing to more than this fraction of their size are stored raw: decoding them would buy nothing. */
const worthCompressing = 0.97;
const zeros = Buffer.alloc(maxChunkBytes);

/**
 * Walks `root` and makes its tree: a file unchanged since `previous` (same size, mtime, inode and ctime) keeps its
 * chunk list at the cost of its stat; any other file is read, cut into content-defined chunks and hashed, and only
 * chunks the owner's repository does not hold yet (`index`) are compressed into `packs`.
 */
export async function buildTree(options: {
  root: string;
  exclude: string[];
  index: ChunkIndex;
  packs: PackWriter;
  previous?: PreviousTree | undefined;
  level: number;
  signal?: AbortSignal | undefined;
  progress?: ProgressReporter | undefined;
  /** The scan of `root` with `exclude`, when the caller started it already (it runs in a thread of its own). */
  scanned?: Promise<ScannedEntry[]>;
}): Promise<BuiltTree> {
  const { root, index, packs, level, signal } = options;
  const scanned = await (options.scanned ?? scanTree(root, { exclude: options.exclude }));
  signal?.throwIfAborted();
  const chunkIds: string[] = [];
  const chunkSlots = new Map<string, number>();
  const locations: Array<ChunkLocation | NewChunk | { encoding: 'zero'; raw: number }> = [];
  const pending = new Map<string, Promise<number>>();
  const warnings: string[] = [];
  const stats = new Map<string, [string, string]>();
  const previousFiles = new Map<string, TreeEntry>();
  if (options.previous) for (const e of options.previous.tree.entries) if (e.type === 'file') previousFiles.set(e.path, e);
  let readBytes = 0;
  let files = 0;
  let dataBytes = 0;

  const slot = (id: string, location: (typeof locations)[number]): number => {
    const at = chunkIds.length;
    chunkIds.push(id);
    locations.push(location);
    chunkSlots.set(id, at);
    return at;
  };

  /** The tree's chunk slot for `data` (a view the caller reuses afterwards: copied when it must be kept). */
  const addChunk = async (data: Buffer): Promise<number> => {
    const id = createHash('sha256').update(data).digest('hex');
    const known = chunkSlots.get(id);
    if (known !== undefined) return known;
    // Checked without yielding first: two readers of one new chunk must not both compress and store it.
    const inFlight = pending.get(id);
    if (inFlight) return inFlight;
    const existing = index.chunks.get(id);
    if (existing) return slot(id, existing);
    if (data.equals(zeros.subarray(0, data.length))) return slot(id, { encoding: 'zero', raw: data.length });
    const work = (async () => {
      const copy = Buffer.from(data);
      const compressed = await compressFrame(copy, level);
      const chunk = compressed.length < copy.length * worthCompressing ? await packs.add(id, compressed, copy.length, 'zstd') : await packs.add(id, copy, copy.length, 'raw');
      return slot(id, chunk);
    })();
    pending.set(id, work);
    try {
      return await work;
    } finally {
      pending.delete(id);
    }
  };

  /**
   * Opened by name, but only trusted once it is the file the scan saw (dev and inode): the scan walked pinned folder
   * descriptors, while this path could meanwhile run through a folder swapped for a symlink (O_NOFOLLOW guards only
   * the last name), which would make root read and store a file from outside the workspace.
   */
  const replaced = () => Object.assign(new Error('replaced since the scan'), { code: 'ELOOP' });
  const isScanned = (info: { dev: number | bigint; ino: number | bigint; isFile(): boolean }, st: ScannedStat) =>
    info.isFile() && info.dev.toString() === st.dev && info.ino.toString() === st.ino;
  /**
   * A small file read with synchronous calls: open, fstat, read and close on the page cache take microseconds, while
   * four promise round trips through the thread pool cost more than the reading (28k files: ~3 s of the event loop).
   * Undefined when it has grown past a chunk since the scan: the streaming read takes it (memory stays bounded).
   */
  const readSmall = (rel: string, st: ScannedStat): Buffer | undefined => {
    const fd = openSync(path.join(root, rel), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const info = fstatSync(fd, { bigint: true });
      if (!isScanned(info, st)) throw replaced();
      if (info.size > BigInt(minChunkBytes)) return undefined;
      const buffer = Buffer.allocUnsafe(minChunkBytes + 1);
      let filled = 0;
      for (;;) {
        const n = readSync(fd, buffer, filled, buffer.length - filled, null);
        if (n === 0) return buffer.subarray(0, filled);
        filled += n;
        if (filled === buffer.length) return undefined; // grew while read
      }
    } finally {
      closeSync(fd);
    }
  };
  const readFile = async (rel: string, st: ScannedStat): Promise<{ chunks: number[]; size: number }> => {
    const small = st.size <= minChunkBytes ? readSmall(rel, st) : undefined;
    if (small) {
      readBytes += small.length;
      return { chunks: small.length > 0 ? [await addChunk(small)] : [], size: small.length };
    }
    const handle = await open(path.join(root, rel), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      // Opened without following a symlink and without blocking on a fifo; a file swapped since the scan is skipped.
      if (!isScanned(await handle.stat({ bigint: true }), st)) throw replaced();
      const chunks: number[] = [];
      let size = 0;
      const buffer = Buffer.allocUnsafe(2 * maxChunkBytes);
      let filled = 0;
      let eof = false;
      while (!eof || filled > 0) {
        signal?.throwIfAborted();
        while (!eof && filled < buffer.length) {
          const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, null);
          if (bytesRead === 0) eof = true;
          filled += bytesRead;
          readBytes += bytesRead;
        }
        let start = 0;
        for (;;) {
          const cut = nextCut(buffer, start, filled, eof);
          if (cut < 0 || cut === start) break;
          chunks.push(await addChunk(buffer.subarray(start, cut)));
          size += cut - start;
          start = cut;
        }
        buffer.copy(buffer, 0, start, filled);
        filled -= start;
        if (eof && filled === 0) break;
      }
      return { chunks, size };
    } finally {
      await handle.close();
    }
  };

  const reuse = (rel: string, st: ScannedStat): number[] | undefined => {
    const before = previousFiles.get(rel);
    const seen = options.previous?.stats.get(rel);
    if (!before || !seen || before.size !== st.size || before.mtimeNs !== st.mtimeNs) return undefined;
    if (seen[0] !== st.ino || seen[1] !== st.ctimeNs) return undefined;
    const out: number[] = [];
    for (const i of before.chunks!) {
      const ref = options.previous!.tree.chunks[i]!;
      const known = chunkSlots.get(ref.id);
      if (known !== undefined) out.push(known);
      else if (ref.encoding === 'zero') out.push(slot(ref.id, { encoding: 'zero', raw: ref.raw }));
      else {
        // Only through the index: it drops a pack before the pack is deleted, the old tree does not know.
        const location = index.chunks.get(ref.id);
        if (!location) return undefined;
        out.push(slot(ref.id, location));
      }
    }
    return out;
  };

  const entries: Array<TreeEntry | undefined> = new Array(scanned.length);
  const firstLink = new Map<string, string>();
  const reads = new Semaphore(4);
  let failure: { error: unknown } | undefined;
  const work: Array<Promise<void>> = [];
  for (const [i, { path: rel, stat: st }] of scanned.entries()) {
    const base = { path: rel, mode: st.mode, uid: st.uid, gid: st.gid, mtimeNs: st.mtimeNs };
    if (st.kind === 'dir') entries[i] = { ...base, type: 'dir' };
    else if (st.kind === 'symlink') {
      work.push(
        readlink(path.join(root, rel)).then(
          (target) => void (entries[i] = { ...base, type: 'symlink', target }),
          () => void warnings.push(`${rel}: removed while reading`),
        ),
      );
    } else if (st.kind === 'fifo') entries[i] = { ...base, type: 'fifo' };
    else if (st.kind === 'char' || st.kind === 'block') entries[i] = { ...base, type: st.kind, rdev: st.rdev };
    else {
      const inode = `${st.dev}:${st.ino}`;
      if (st.nlink > 1) {
        const first = firstLink.get(inode);
        if (first !== undefined) {
          entries[i] = { ...base, type: 'hardlink', target: first };
          continue;
        }
        firstLink.set(inode, rel);
      }
      files++;
      const reused = reuse(rel, st);
      if (reused) {
        entries[i] = { ...base, type: 'file', size: st.size, chunks: reused };
        stats.set(rel, [st.ino, st.ctimeNs]);
        dataBytes += st.size;
        continue;
      }
      work.push(
        reads.run(async () => {
          signal?.throwIfAborted();
          if (failure) return; // the backup has failed: read nothing more
          try {
            const { chunks, size } = await readFile(rel, st);
            entries[i] = { ...base, type: 'file', size, chunks };
            dataBytes += size;
            // A file that changed while read must be read again next time: no stat to match.
            if (size === st.size) stats.set(rel, [st.ino, st.ctimeNs]);
            else warnings.push(`${rel}: file changed as we read it`);
          } catch (error) {
            const code = (error as NodeJS.ErrnoException).code;
            if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENXIO') warnings.push(`${rel}: removed or replaced while reading`);
            else throw new WsdError('UNAVAILABLE', `reading ${rel}: ${(error as Error).message}`, { cause: error });
          }
          options.progress?.({ files });
        }).catch((error: unknown) => {
          failure ??= { error };
        }),
      );
    }
  }
  // Every read settles before a failure is reported: nothing reads or uploads behind a backup that has given up.
  await Promise.all(work);
  if (failure) throw failure.error;
  await packs.finish();

  // Entries that vanished while reading are dropped, and so is anything below a folder that did.
  const kept: TreeEntry[] = [];
  const folders = new Set<string>();
  const filePaths = new Set<string>();
  for (const entry of entries) {
    if (!entry) continue;
    const slash = entry.path.lastIndexOf('/');
    if (entry.path !== '' && !folders.has(slash < 0 ? '' : entry.path.slice(0, slash))) continue;
    if (entry.type === 'hardlink' && !filePaths.has(entry.target!)) continue;
    if (entry.type === 'dir') folders.add(entry.path);
    if (entry.type === 'file') filePaths.add(entry.path);
    kept.push(entry);
  }

  const packIds: string[] = [];
  const packSlots = new Map<string, number>();
  const packSlot = (id: string) => {
    let at = packSlots.get(id);
    if (at === undefined) {
      at = packIds.length;
      packIds.push(id);
      packSlots.set(id, at);
    }
    return at;
  };
  // Chunks and packs numbered in order of first use: the same tree always encodes to the same bytes, whatever
  // order concurrent reads finished in (an unchanged workspace is recognised by its tree's hash).
  const chunks: Tree['chunks'] = [];
  const renumbered = new Map<number, number>();
  for (const entry of kept) {
    if (!entry.chunks) continue;
    entry.chunks = entry.chunks.map((old) => {
      let at = renumbered.get(old);
      if (at === undefined) {
        at = chunks.length;
        renumbered.set(old, at);
        const id = chunkIds[old]!;
        const location = locations[old]!;
        if (location.encoding === 'zero') chunks.push({ id, pack: 0, offset: 0, stored: 0, raw: location.raw, encoding: 'zero' });
        else {
          const { offset, stored, raw, encoding } = location as ChunkLocation | NewChunk;
          const pack = typeof (location as ChunkLocation).pack === 'string' ? (location as ChunkLocation).pack : (location as NewChunk).pack.id!;
          chunks.push({ id, pack: packSlot(pack), offset, stored, raw, encoding });
        }
      }
      return at;
    });
  }
  const tree: Tree = { packs: packIds, chunks, entries: kept };
  return { tree, stats, files, dataBytes, readBytes, warnings };
}

