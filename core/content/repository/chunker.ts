import { createHash } from 'node:crypto';

/**
 * Content-defined chunking (FastCDC, "normalized chunking" with two masks): a cut point depends only on the 32 bytes
 * before it, so an edit moves the cut points near it and no others — a 1 MiB edit inside a 200 MiB file changes two
 * or three chunks, not everything after it. Sizes: 256 KiB minimum, ~1 MiB on average, 4 MiB maximum (restic's
 * average; ADR 0007 has the measurements).
 */
export const minChunkBytes = 256 * 1024;
export const maxChunkBytes = 4 * 1024 * 1024;
const normalChunkBytes = 1024 * 1024;
/** Before the normal size a cut needs 21 zero bits (rarer), after it 17 (likelier): sizes cluster around 1 MiB. */
const maskSmall = 0xfffff800 | 0;
const maskLarge = 0xffff8000 | 0;

/**
 * The gear table: 256 pseudo-random 32-bit values. It must be the same on every node and in every version, or
 * identical content would be cut differently and never deduplicate: it is derived from a fixed string, not random.
 */
const gear: Int32Array = (() => {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) table[i] = createHash('sha256').update(`wsd gear ${i}`).digest().readInt32LE(0);
  return table;
})();

/**
 * The end (exclusive) of the chunk that starts at `start` in `data[start, end)`. `final` says that `end` is the end
 * of the file: without it, a chunk is only cut where a cut point is found or at the maximum size, so the caller must
 * keep at least {@link maxChunkBytes} bytes buffered after `start` (or reach the end of the file) before asking.
 */
export function nextCut(data: Uint8Array, start: number, end: number, final: boolean): number {
  const available = end - start;
  if (available <= minChunkBytes) return final ? end : -1;
  const limit = start + Math.min(available, maxChunkBytes);
  const normal = Math.min(start + normalChunkBytes, limit);
  let hash = 0;
  let i = start + minChunkBytes;
  for (; i < normal; i++) {
    hash = ((hash << 1) + gear[data[i]!]!) | 0;
    if ((hash & maskSmall) === 0) return i + 1;
  }
  for (; i < limit; i++) {
    hash = ((hash << 1) + gear[data[i]!]!) | 0;
    if ((hash & maskLarge) === 0) return i + 1;
  }
  if (limit - start === maxChunkBytes) return limit;
  return final ? end : -1;
}
