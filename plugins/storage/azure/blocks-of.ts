import type { Readable } from 'node:stream';

/**
 * Cuts a body into blocks of `sizeAt(index)` bytes (the last one shorter; an empty body is one empty block), reading
 * only as fast as the consumer takes blocks, so at most one block is gathered ahead of what is being uploaded.
 * `signal` is checked between chunks: an endless body stops at once when the put is cancelled.
 */
export async function* blocksOf(body: Readable | Uint8Array, sizeAt: (index: number) => number, signal?: AbortSignal): AsyncGenerator<Buffer> {
  let index = 0;
  if (body instanceof Uint8Array) {
    const all = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    let at = 0;
    do {
      const end = Math.min(all.length, at + sizeAt(index++));
      yield all.subarray(at, end);
      at = end;
    } while (at < all.length);
    return;
  }
  let parts: Buffer[] = [];
  let gathered = 0;
  for await (const raw of body as AsyncIterable<Buffer | Uint8Array | string>) {
    signal?.throwIfAborted();
    let chunk = typeof raw === 'string' ? Buffer.from(raw) : Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    while (chunk.length > 0) {
      const want = sizeAt(index) - gathered;
      if (chunk.length < want) {
        parts.push(chunk);
        gathered += chunk.length;
        break;
      }
      parts.push(chunk.subarray(0, want));
      chunk = chunk.subarray(want);
      const block = Buffer.concat(parts, gathered + want);
      parts = [];
      gathered = 0;
      index++;
      yield block;
      signal?.throwIfAborted();
    }
  }
  if (gathered > 0 || index === 0) yield Buffer.concat(parts, gathered);
}
