/** At most `limit` holders at once; others wait in arrival order. */
export class Semaphore {
  readonly #limit: number;
  #active = 0;
  /** A queue with a moving head: `shift()` on an array of tens of thousands of waiters is quadratic. */
  #waiting: Array<() => void> = [];
  #head = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#active >= this.#limit) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#active++;
    try {
      return await fn();
    } finally {
      const next = this.#waiting[this.#head];
      if (next) {
        this.#waiting[this.#head++] = undefined as unknown as () => void;
        if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
          this.#waiting = this.#waiting.slice(this.#head);
          this.#head = 0;
        }
        next();
      } else this.#active--;
    }
  }
}

/**
 * `fn` over `items`, at most `limit` at once, results in input order. After the first failure no new item starts,
 * and it rejects with that failure once the items already running have settled: nothing keeps working behind a
 * caller that has moved on (a restore removing its staging folder, say).
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
  return results;
}
