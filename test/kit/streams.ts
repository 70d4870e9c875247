import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';

/**
 * A stream of `size` bytes of a repeatable pseudo-random pattern, in chunks of uneven size and with no length
 * attached — what a backend sees when wsd streams an archive it is still producing.
 */
export function patternStream(size: number, seed = 1): Readable {
  let produced = 0;
  let state = seed >>> 0 || 1;
  return new Readable({
    read() {
      if (produced >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(size - produced, 48 * 1024 + (produced % 17) * 1024);
      const chunk = Buffer.allocUnsafe(Math.ceil(n / 4) * 4);
      for (let i = 0; i < chunk.length; i += 4) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        chunk.writeUInt32LE(state >>> 0, i);
      }
      produced += n;
      this.push(chunk.subarray(0, n));
    },
  });
}

/** sha256 (hex) and length of everything a stream yields. */
export async function sha256Of(stream: AsyncIterable<Buffer | Uint8Array | string>): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    hash.update(buf);
    size += buf.length;
  }
  return { sha256: hash.digest('hex'), size };
}
