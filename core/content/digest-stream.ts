import { createHash } from 'node:crypto';
import { Transform, finished } from 'node:stream';
import { WsdError } from '../errors.js';

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

/**
 * A pass-through that checks what flows through it against an expected size and sha256: more bytes than expected
 * fail it at once, and a short or different stream fails it at its end — before it ends, so a reader never sees a
 * clean end of bytes that do not match (`DATA_LOSS`, naming `what`).
 */
export class VerifiedStream extends Transform {
  readonly #hash = createHash('sha256');
  readonly #expected: { size: number; sha256: string };
  readonly #what: string;
  #size = 0;

  constructor(expected: { size: number; sha256: string }, what: string) {
    super();
    this.#expected = expected;
    this.#what = what;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null, data?: Buffer) => void): void {
    this.#size += chunk.length;
    if (this.#size > this.#expected.size) {
      callback(new WsdError('DATA_LOSS', `${this.#what} is corrupt: more than the ${this.#expected.size} bytes its manifest records`));
      return;
    }
    this.#hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: (error?: Error | null) => void): void {
    const sha256 = this.#hash.digest('hex');
    if (this.#size !== this.#expected.size || sha256 !== this.#expected.sha256) {
      callback(new WsdError('DATA_LOSS', `${this.#what} is corrupt: expected ${this.#expected.size} bytes sha256 ${this.#expected.sha256}, read ${this.#size} bytes sha256 ${sha256}`));
      return;
    }
    callback();
  }
}
