export interface Chunk {
  data: Buffer;
  /** No byte follows this chunk. */
  last: boolean;
}

/**
 * Cuts a body into chunks of exactly `size` bytes (the last one shorter, possibly empty when the body is), and says
 * which chunk is the last: a resumable upload must announce the total size with its final chunk, and a body that
 * fits one chunk goes up as a single request. Finding the end takes one read ahead of the chunk handed out.
 * Leaving the loop early (an error, an abort) ends the source stream.
 */
export async function* fixedChunks(body: AsyncIterable<Uint8Array | string> | Uint8Array, size: number): AsyncGenerator<Chunk> {
  if (body instanceof Uint8Array) {
    const all = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    for (let offset = 0; ; offset += size) {
      const data = all.subarray(offset, offset + size);
      const last = offset + size >= all.length;
      yield { data, last };
      if (last) return;
    }
  }
  const source = body[Symbol.asyncIterator]();
  let ended = false;
  let pending: Buffer = Buffer.alloc(0);
  const pull = async (): Promise<void> => {
    while (pending.length === 0 && !ended) {
      const next = await source.next();
      if (next.done) ended = true;
      else pending = typeof next.value === 'string' ? Buffer.from(next.value) : Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    }
  };
  try {
    for (;;) {
      const parts: Buffer[] = [];
      let filled = 0;
      while (filled < size) {
        await pull();
        if (pending.length === 0) break;
        const take = pending.subarray(0, size - filled);
        parts.push(take);
        filled += take.length;
        pending = pending.subarray(take.length);
      }
      await pull();
      const last = pending.length === 0 && ended;
      // One buffer per chunk: pieces of a few KiB would cost a write each when sent, and a retry resends it whole.
      yield { data: parts.length === 1 ? parts[0]! : Buffer.concat(parts, filled), last };
      if (last) return;
    }
  } finally {
    if (!ended) await source.return?.();
  }
}
