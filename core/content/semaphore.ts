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
