import { Readable } from 'node:stream';
import { WsdError } from '../../../core/plugin-api.js';

export interface ResumableDownloadOptions {
  /** The body of the first response, which starts at `offset`. */
  first: NodeJS.ReadableStream;
  offset: number;
  /** Bytes the whole download yields. */
  length: number;
  /**
   * Opens the rest, `[position, position + remaining)`, pinned to the version of the first response (If-Match), with
   * its own retries; rejects with a WsdError (FAILED_PRECONDITION when that version is gone).
   */
  reopen: (position: number, remaining: number) => Promise<NodeJS.ReadableStream>;
  /** A body that yields nothing for this long is given up and resumed. */
  stallMs: number;
  /** Resumes in a row without a byte of progress before the download fails. */
  maxResumes: number;
  /** Maps a failure of the transfer to a WsdError and says whether resuming may help. */
  map: (error: unknown) => { error: WsdError; retryable: boolean };
  signal?: AbortSignal;
}

/**
 * A download that survives a connection lost midway: the rest is requested again from where it broke, with the
 * first response's etag as If-Match, so the bytes never mix two versions of the object. Ends with a WsdError when
 * the transfer cannot be completed; destroying the returned stream early ends the request under it.
 */
export function resumableDownload(options: ResumableDownloadOptions): Readable {
  const { offset, length, stallMs, maxResumes, map, signal } = options;
  async function* chunks(): AsyncGenerator<Buffer> {
    let current: NodeJS.ReadableStream = options.first;
    let position = offset;
    let failedInARow = 0;
    try {
      for (;;) {
        try {
          for await (const chunk of withStallLimit(current, stallMs)) {
            const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
            position += buf.length;
            failedInARow = 0;
            yield buf;
          }
          if (position - offset >= length) return;
          throw Object.assign(new Error(`the response ended after ${position - offset} of ${length} bytes`), { code: 'ECONNRESET' });
        } catch (error) {
          if (signal?.aborted) throw new WsdError('CANCELLED', 'download cancelled');
          const mapped = map(error);
          if (!mapped.retryable || ++failedInARow > maxResumes) throw mapped.error;
          (current as { destroy?: () => void }).destroy?.();
          current = await options.reopen(position, length - (position - offset));
        }
      }
    } finally {
      (current as { destroy?: () => void }).destroy?.();
    }
  }
  const body = Readable.from(chunks(), { objectMode: false, highWaterMark: 64 * 1024 });
  if (signal) {
    const onAbort = () => body.destroy(new WsdError('CANCELLED', 'download cancelled'));
    if (signal.aborted) onAbort();
    else {
      signal.addEventListener('abort', onAbort, { once: true });
      body.once('close', () => signal.removeEventListener('abort', onAbort));
    }
  }
  return body;
}

/**
 * Iterates `stream`, destroying it with a timeout error when it yields nothing for `ms` while a chunk is awaited (a
 * consumer slow to take chunks is not a stalled server). One coarse interval per stream, not a timer per chunk.
 */
async function* withStallLimit(stream: NodeJS.ReadableStream, ms: number): AsyncGenerator<Buffer | string> {
  let waitingSince: number | undefined;
  const watch = setInterval(() => {
    if (waitingSince !== undefined && Date.now() - waitingSince >= ms) {
      (stream as { destroy?: (e: Error) => void }).destroy?.(Object.assign(new Error(`no data for ${ms} ms`), { code: 'ETIMEDOUT' }));
    }
  }, Math.max(50, Math.floor(ms / 4)));
  watch.unref();
  try {
    const iterator = (stream as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
    for (;;) {
      waitingSince = Date.now();
      const next = await iterator.next();
      waitingSince = undefined;
      if (next.done) return;
      yield next.value;
    }
  } finally {
    clearInterval(watch);
  }
}
