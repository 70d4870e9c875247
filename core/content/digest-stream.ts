import { createHash } from 'node:crypto';
import { Transform, finished } from 'node:stream';

/** A pass-through that measures what flows through it: size and sha256, read once the stream has ended. */
export class DigestStream extends Transform {
  /**
   * `source` piped through a new meter; an error of `source` fails the meter too, and so does a source that closes
   * before its end (`ERR_STREAM_PREMATURE_CLOSE`: a transfer cut without an error). pipe() alone would do neither,
   * and a reader of the meter would wait forever. `onSize` hears the running size after each chunk (for progress
   * reports).
   */
  static of(source: NodeJS.ReadableStream, onSize?: (size: number) => void): DigestStream {
    const meter = new DigestStream(onSize);
    finished(source, { writable: false }, (error) => {
      if (error) meter.destroy(error);
    });
    source.pipe(meter);
    return meter;
  }

  readonly #hash = createHash('sha256');
  readonly #onSize: ((size: number) => void) | undefined;
  size = 0;
  #digest: string | undefined;

  constructor(onSize?: (size: number) => void) {
    super();
    this.#onSize = onSize;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null, data?: Buffer) => void): void {
    this.#hash.update(chunk);
    this.size += chunk.length;
    this.#onSize?.(this.size);
    callback(null, chunk);
  }

  override _flush(callback: () => void): void {
    this.#digest = this.#hash.digest('hex');
    callback();
  }

  /** Hex sha256 of everything that passed; only valid after the stream ended. */
  get sha256(): string {
    if (this.#digest === undefined) throw new Error('DigestStream: read sha256 before the stream ended');
    return this.#digest;
  }
}
