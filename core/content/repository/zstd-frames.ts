import { createRequire } from 'node:module';
import { WsdError } from '../../errors.js';

// The package's own wrapper drops the level argument (it always compresses at zstd's default, 3): call its bindings.
const { compress, decompress } = createRequire(import.meta.url)('@mongodb-js/zstd/bindings.js') as {
  compress(data: Buffer, level?: number): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
};

/**
 * In-process zstd (libzstd through N-API; the work runs on libuv's thread pool, off the event loop) for chunks,
 * trees and index objects: one frame per chunk, so any chunk can be fetched with a ranged read and decoded alone.
 */
export function compressFrame(data: Uint8Array, level: number): Promise<Buffer> {
  return compress(Buffer.from(data.buffer, data.byteOffset, data.byteLength), level);
}

const magic = 0xfd2fb528;
const maxBlockBytes = 128 * 1024;
/** Chunks are at most 4 MiB and trees 256 MiB: no frame of ours needs a larger window. */
const maxWindowBytes = 256 * 1024 * 1024;

/**
 * Decodes one zstd frame of ours, after checking its structure so that a planted frame cannot make the decoder
 * allocate much more than `limit` says (a zstd frame can expand ~30 000×): exactly one frame spanning the buffer
 * (nothing appended), no dictionary, a window of at most 256 MiB, a declared content size (if any) within the
 * limit, and no more blocks than the content could fill (each block yields at most 128 KiB). `exact` also requires
 * the decoded size. Anything else is `DATA_LOSS` naming `what`.
 */
export async function decompressFrame(frame: Buffer, limit: { exact: number } | { max: number }, what: string): Promise<Buffer> {
  const max = 'exact' in limit ? limit.exact : limit.max;
  const reason = frameProblem(frame, max);
  if (reason) throw new WsdError('DATA_LOSS', `${what}: refused zstd frame: ${reason}`);
  let out: Buffer;
  try {
    out = await decompress(frame);
  } catch (error) {
    throw new WsdError('DATA_LOSS', `${what}: not a valid zstd frame (${(error as Error).message})`, { cause: error });
  }
  if ('exact' in limit ? out.length !== limit.exact : out.length > limit.max) {
    throw new WsdError('DATA_LOSS', `${what}: decoded ${out.length} bytes, expected ${'exact' in limit ? limit.exact : `at most ${limit.max}`}`);
  }
  return out;
}

/** Why `frame` is not a single, bounded zstd frame (RFC 8878 §3.1.1), or undefined. */
function frameProblem(frame: Buffer, max: number): string | undefined {
  if (frame.length < 6 || frame.readUInt32LE(0) !== magic) return 'no zstd magic number';
  const descriptor = frame[4]!;
  const fcsFlag = descriptor >> 6;
  const singleSegment = (descriptor >> 5) & 1;
  const checksum = (descriptor >> 2) & 1;
  if ((descriptor >> 3) & 1) return 'reserved bit set';
  if (descriptor & 3) return 'a dictionary is required';
  let at = 5;
  if (!singleSegment) {
    const window = frame[at++]!;
    const exponent = window >> 3;
    const base = 2 ** (10 + exponent);
    if (base + (base / 8) * (window & 7) > maxWindowBytes) return 'window larger than 256 MiB';
  }
  const fcsBytes = fcsFlag === 0 ? singleSegment : [0, 2, 4, 8][fcsFlag]!;
  if (frame.length < at + fcsBytes) return 'truncated header';
  if (fcsBytes > 0) {
    const declared = fcsBytes === 1 ? frame[at]! : fcsBytes === 2 ? frame.readUInt16LE(at) + 256 : fcsBytes === 4 ? frame.readUInt32LE(at) : Number(frame.readBigUInt64LE(at));
    if (declared > max) return `declares ${declared} bytes of content, more than ${max}`;
  }
  at += fcsBytes;
  const maxBlocks = Math.ceil(max / maxBlockBytes) + 1;
  for (let blocks = 1; ; blocks++) {
    if (blocks > maxBlocks) return `more blocks than ${max} bytes of content need`;
    if (frame.length < at + 3) return 'truncated block header';
    const header = frame[at]! | (frame[at + 1]! << 8) | (frame[at + 2]! << 16);
    at += 3;
    const type = (header >> 1) & 3;
    const size = header >>> 3;
    if (type === 3) return 'reserved block type';
    if (size > maxBlockBytes) return 'block larger than 128 KiB';
    at += type === 1 ? 1 : size; // an RLE block stores one byte
    if (at > frame.length) return 'truncated block';
    if (header & 1) break;
  }
  if (checksum) at += 4;
  if (at !== frame.length) return at > frame.length ? 'truncated checksum' : 'bytes after the frame';
  return undefined;
}
