import { WsdError } from '../../errors.js';
import { maxChunkBytes } from './chunker.js';

/**
 * The tree of a backup: every entry of the workspace (path, type, mode, owner, mtime; a file's size and chunks) and
 * where each chunk is stored. Stored zstd-compressed as JSON beside the manifest (`<time>-<nonce>.tree.zst`); the
 * manifest records its size and sha256, so a restore trusts nothing it has not checked (ADR 0007).
 */
export interface Tree {
  /** Ids (64 hex digits, random) of the packs chunks live in; a chunk names its pack by index here. */
  packs: string[];
  chunks: ChunkRef[];
  /** In an order where every entry's parent comes before it; the root (`''`) first. */
  entries: TreeEntry[];
}

export type ChunkEncoding = 'zstd' | 'raw' | 'zero';

export interface ChunkRef {
  /** Hex sha256 of the chunk's content. */
  id: string;
  /** Index into `Tree.packs` (unused for `zero`). */
  pack: number;
  offset: number;
  /** Bytes in the pack. */
  stored: number;
  /** Bytes of content. */
  raw: number;
  /** `zero`: all zero bytes, nothing stored (a restore leaves a hole). */
  encoding: ChunkEncoding;
}

export type EntryType = 'dir' | 'file' | 'symlink' | 'hardlink' | 'fifo' | 'char' | 'block';

export interface TreeEntry {
  /** Relative, `/`-separated; `''` is the root. */
  path: string;
  type: EntryType;
  /** Permission bits with setuid/setgid/sticky (unused for hard links). */
  mode: number;
  uid: number;
  gid: number;
  /** Nanoseconds since the epoch, as a decimal string (a double cannot hold them). */
  mtimeNs: string;
  /** Files: content bytes. */
  size?: number;
  /** Files: indexes into `Tree.chunks`, in order. */
  chunks?: number[];
  /** Symlinks: the link's text; hard links: the path of an earlier file entry. */
  target?: string;
  /** Devices: [major, minor]. */
  rdev?: [number, number];
}

/** A tree's JSON is parsed whole; these bound what a planted or corrupt tree can make a restore allocate. */
export const maxTreeJsonBytes = 256 * 1024 * 1024;
const maxEntries = 5_000_000;
const maxPathBytes = 4096;
const maxNameBytes = 255;

const typeCodes: Record<EntryType, string> = { dir: 'd', file: 'f', symlink: 'l', hardlink: 'h', fifo: 'p', char: 'c', block: 'b' };
const typesByCode = new Map(Object.entries(typeCodes).map(([type, code]) => [code, type as EntryType]));
/** How a chunk's encoding is written in trees and index objects. */
export const encodingCodes: Record<ChunkEncoding, number> = { raw: 0, zstd: 1, zero: 2 };
export const encodings: ChunkEncoding[] = ['raw', 'zstd', 'zero'];

/** The JSON form: short keys and arrays (a tree of 30k files is ~3 MB of JSON, ~1 MB compressed). */
export function encodeTree(tree: Tree): string {
  return JSON.stringify({
    version: 1,
    packs: tree.packs,
    chunks: tree.chunks.map((c) => [c.id, c.pack, c.offset, c.stored, c.raw, encodingCodes[c.encoding]]),
    entries: tree.entries.map((e) => {
      const out: Record<string, unknown> = { p: e.path, t: typeCodes[e.type], m: e.mode, u: e.uid, g: e.gid, mt: e.mtimeNs };
      if (e.size !== undefined) out['s'] = e.size;
      if (e.chunks !== undefined) out['c'] = e.chunks;
      if (e.target !== undefined) out['l'] = e.target;
      if (e.rdev !== undefined) out['rd'] = e.rdev;
      return out;
    }),
  });
}

/**
 * Parses and checks a tree before anything acts on it: shapes and types of every field; paths relative, without
 * `.`/`..`/empty segments, bounded, unique, each below a folder entry that comes earlier (so nothing is ever created
 * below a symlink of the tree); hard links to earlier files; chunk lists adding up to the file size; chunk refs
 * inside the pack list and no larger than a chunk can be. Anything else is `DATA_LOSS` naming `what`.
 */
export function decodeTree(json: string, what: string): { tree: Tree; dataBytes: number; storedDataBytes: number } {
  const bad = (why: string) => new WsdError('DATA_LOSS', `${what} is refused: ${why}`);
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new WsdError('DATA_LOSS', `${what} is not valid JSON`, { cause: error });
  }
  const doc = raw as { version?: unknown; packs?: unknown; chunks?: unknown; entries?: unknown };
  if (doc === null || typeof doc !== 'object' || doc.version !== 1) throw bad('not a wsd tree (version 1)');
  if (!Array.isArray(doc.packs) || !Array.isArray(doc.chunks) || !Array.isArray(doc.entries)) throw bad('packs, chunks and entries must be arrays');
  if (doc.entries.length > maxEntries) throw bad(`more than ${maxEntries} entries`);
  const packs = doc.packs as unknown[];
  for (const id of packs) if (typeof id !== 'string' || !isHexId(id)) throw bad('a pack id is not 64 hex digits');

  const chunks: ChunkRef[] = (doc.chunks as unknown[]).map((c, i) => {
    if (!Array.isArray(c) || c.length !== 6) throw bad(`chunk ${i} is malformed`);
    const [id, pack, offset, stored, rawBytes, code] = c as unknown[];
    if (typeof id !== 'string' || !isHexId(id)) throw bad(`chunk ${i} id is not 64 hex digits`);
    const encoding = encodings[code as number];
    if (!Number.isInteger(code) || encoding === undefined) throw bad(`chunk ${i} has an unknown encoding`);
    for (const n of [pack, offset, stored, rawBytes]) if (!Number.isSafeInteger(n) || (n as number) < 0) throw bad(`chunk ${i} has a field that is not a non-negative integer`);
    const ref: ChunkRef = { id, pack: pack as number, offset: offset as number, stored: stored as number, raw: rawBytes as number, encoding };
    if (ref.raw === 0 || ref.raw > maxChunkBytes) throw bad(`chunk ${i} claims ${ref.raw} bytes of content (1..${maxChunkBytes})`);
    if (encoding === 'zero') {
      if (ref.stored !== 0) throw bad(`chunk ${i} is zeros but claims stored bytes`);
    } else {
      if (ref.pack >= packs.length) throw bad(`chunk ${i} names pack ${ref.pack} of ${packs.length}`);
      if (encoding === 'raw' ? ref.stored !== ref.raw : ref.stored === 0 || ref.stored > zstdBound(ref.raw)) throw bad(`chunk ${i} has an impossible stored size`);
    }
    return ref;
  });

  const kinds = new Map<string, EntryType>();
  const entries: TreeEntry[] = [];
  let dataBytes = 0;
  let storedDataBytes = 0;
  for (const [i, value] of (doc.entries as unknown[]).entries()) {
    const e = value as Record<string, unknown>;
    if (e === null || typeof e !== 'object') throw bad(`entry ${i} is not an object`);
    const type = typesByCode.get(e['t'] as string);
    const pathValue = e['p'];
    if (type === undefined) throw bad(`entry ${i} has an unknown type`);
    if (typeof pathValue !== 'string') throw bad(`entry ${i} has no path`);
    const where = `entry ${JSON.stringify(pathValue.slice(0, 200))}`;
    if (i === 0) {
      if (pathValue !== '' || type !== 'dir') throw bad('the first entry is not the root folder');
    } else {
      const reason = badPathReason(pathValue);
      if (reason) throw bad(`${where}: ${reason}`);
      if (kinds.has(pathValue)) throw bad(`${where} appears twice`);
      const slash = pathValue.lastIndexOf('/');
      const parent = slash < 0 ? '' : pathValue.slice(0, slash);
      if (kinds.get(parent) !== 'dir') throw bad(`${where} is not below a folder listed before it`);
    }
    for (const field of ['m', 'u', 'g'] as const) if (!Number.isSafeInteger(e[field]) || (e[field] as number) < 0) throw bad(`${where}: ${field} is not a non-negative integer`);
    if ((e['m'] as number) > 0o7777) throw bad(`${where}: mode has bits beyond 07777`);
    if ((e['u'] as number) > 0xffffffff || (e['g'] as number) > 0xffffffff) throw bad(`${where}: owner out of range`);
    if (typeof e['mt'] !== 'string' || !/^-?\d{1,20}$/.test(e['mt'])) throw bad(`${where}: mtime is not a decimal integer`);
    const entry: TreeEntry = { path: pathValue, type, mode: e['m'] as number, uid: e['u'] as number, gid: e['g'] as number, mtimeNs: e['mt'] };
    if (type === 'file') {
      const size = e['s'];
      const list = e['c'];
      if (!Number.isSafeInteger(size) || (size as number) < 0) throw bad(`${where}: size is not a non-negative integer`);
      if (!Array.isArray(list)) throw bad(`${where}: no chunk list`);
      let sum = 0;
      for (const index of list) {
        const ref = Number.isInteger(index) ? chunks[index as number] : undefined;
        if (!ref) throw bad(`${where}: names a chunk that does not exist`);
        sum += ref.raw;
        if (ref.encoding !== 'zero') storedDataBytes += ref.raw;
      }
      if (sum !== size) throw bad(`${where}: its chunks hold ${sum} bytes, its size is ${size as number}`);
      entry.size = size as number;
      entry.chunks = list as number[];
      dataBytes += entry.size;
    } else if (type === 'symlink' || type === 'hardlink') {
      const target = e['l'];
      if (typeof target !== 'string' || target.length === 0 || target.includes('\0') || Buffer.byteLength(target) > maxPathBytes) throw bad(`${where}: bad link target`);
      if (type === 'hardlink' && kinds.get(target) !== 'file') throw bad(`${where}: a hard link to something other than an earlier file`);
      entry.target = target;
    } else if (type === 'char' || type === 'block') {
      const rdev = e['rd'];
      if (!Array.isArray(rdev) || rdev.length !== 2 || !rdev.every((n) => Number.isSafeInteger(n) && n >= 0 && n < 2 ** 32)) throw bad(`${where}: bad device numbers`);
      entry.rdev = rdev as [number, number];
    }
    kinds.set(pathValue, type);
    entries.push(entry);
  }
  if (entries.length === 0) throw bad('no root folder');
  return { tree: { packs: packs as string[], chunks, entries }, dataBytes, storedDataBytes };
}

/** Why `p` is not a relative path a restore may create, or undefined. */
function badPathReason(p: string): string | undefined {
  if (p.length === 0) return 'empty path';
  if (p.includes('\0')) return 'NUL in path';
  if (Buffer.byteLength(p) > maxPathBytes) return `path longer than ${maxPathBytes} bytes`;
  for (const segment of p.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') return 'absolute path or an empty, "." or ".." segment';
    if (Buffer.byteLength(segment) > maxNameBytes) return `a name longer than ${maxNameBytes} bytes`;
  }
  return undefined;
}

export function isHexId(value: string): boolean {
  return /^[0-9a-f]{64}$/.test(value);
}

/** The most bytes zstd can make of `raw` bytes (ZSTD_compressBound). */
export function zstdBound(raw: number): number {
  return raw + (raw >> 8) + (raw < 128 * 1024 ? (128 * 1024 - raw) >> 11 : 0) + 64;
}
