/**
 * Which XFS project ids of the configured range are taken, and by which workspace folder. An id is taken when a
 * folder carries it (read from disk at start, whether or not it holds data), when the quota table has usage or
 * limits for it, or when a handle names it. Plain data: the strategy serializes every use.
 */
export class ProjectIdTable {
  /** id → the folder it belongs to; `''` for an id in use by something that is not a known folder. */
  readonly #owners = new Map<number, string>();

  constructor(
    readonly first: number,
    readonly last: number,
  ) {}

  inRange(id: number): boolean {
    return Number.isSafeInteger(id) && id >= this.first && id <= this.last;
  }

  /** The lowest free id, now taken by `dir`; undefined when the range is used up. */
  allocate(dir: string): number | undefined {
    for (let id = this.first; id <= this.last; id++) {
      if (!this.#owners.has(id)) {
        this.#owners.set(id, dir);
        return id;
      }
    }
    return undefined;
  }

  /** Records that `id` belongs to `dir` (`''`: to something unknown). */
  claim(id: number, dir: string): void {
    this.#owners.set(id, dir);
  }

  ownerOf(id: number): string | undefined {
    return this.#owners.get(id);
  }

  free(id: number): void {
    this.#owners.delete(id);
  }

  /** Ids taken by something that is not a known folder. */
  unowned(): number[] {
    return [...this.#owners.entries()].filter(([, dir]) => dir === '').map(([id]) => id);
  }

  get size(): number {
    return this.#owners.size;
  }
}
