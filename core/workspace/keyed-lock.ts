/**
 * One operation at a time per key: `run(key, fn)` starts `fn` once every earlier operation on that key has settled.
 * Operations on different keys run concurrently.
 */
export class KeyedLock {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(fn, fn);
    const tail = result.catch(() => {});
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Whether anything is running or queued for `key`. */
  busy(key: string): boolean {
    return this.#tails.has(key);
  }
}
