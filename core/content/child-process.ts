import type { ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';

/** Resolves with the exit code once `child` has exited; rejects if it could not be started (e.g. not installed). */
export function exitOf(child: ChildProcess, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT' ? new Error(`${name} is not installed (needed for archives)`) : error),
    );
    child.once('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** Keeps the last `limit` characters of a child's stderr for error messages. */
export function captureTail(stream: NodeJS.ReadableStream | null, limit = 4000): () => string {
  let text = '';
  stream?.on('data', (chunk: Buffer) => {
    text = (text + chunk.toString()).slice(-limit);
  });
  return () => text.trim();
}

/**
 * Writes into a child's stdin and, when the child closes it early (it exited), swallows the rest instead of failing:
 * the caller decides from the child's exit code and `closedEarly` whether that was fine. Keeps backpressure.
 */
export class ChildStdin extends Writable {
  closedEarly = false;
  readonly #target: Writable;
  readonly #mayStopEarly: () => boolean;

  /**
   * `mayStopEarly`: whether the child may have stopped reading by now (tar after the end-of-archive block). When it
   * closes its input before that, the rest is not swallowed: writing fails at once (a tar that died must not make
   * wsd fetch and decompress the remaining GiBs first).
   */
  constructor(target: Writable, mayStopEarly: () => boolean = () => true) {
    super();
    this.#target = target;
    this.#mayStopEarly = mayStopEarly;
    target.on('error', () => (this.closedEarly = true));
    target.on('close', () => {
      if (!target.writableFinished) this.closedEarly = true;
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.closedEarly || this.#target.destroyed) {
      this.closedEarly = true;
      callback(this.#mayStopEarly() ? null : new Error('the child stopped reading its input'));
      return;
    }
    this.#target.write(chunk, (error) => {
      if (error) this.closedEarly = true;
      callback(error && !this.#mayStopEarly() ? error : null);
    });
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.closedEarly || this.#target.destroyed) {
      callback();
      return;
    }
    this.#target.end(() => callback());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (error) this.#target.destroy();
    callback(error);
  }
}
