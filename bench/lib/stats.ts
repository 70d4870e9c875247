/** Median and spread of a series of measurements. */
export interface Summary {
  samples: number[];
  median: number;
  min: number;
  max: number;
}

export function summarize(samples: number[]): Summary {
  if (samples.length === 0) throw new Error('no samples to summarize');
  const sorted = [...samples].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { samples, median, min: sorted[0]!, max: sorted.at(-1)! };
}

/** Seconds `fn` takes, from a monotonic clock. */
export async function seconds(fn: () => unknown): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Samples of named series, gathered round by round. */
export class Series {
  readonly #values = new Map<string, number[]>();

  add(name: string, value: number): void {
    const list = this.#values.get(name) ?? [];
    list.push(value);
    this.#values.set(name, list);
  }

  has(name: string): boolean {
    return (this.#values.get(name)?.length ?? 0) > 0;
  }

  summary(name: string): Summary {
    const values = this.#values.get(name);
    if (!values?.length) throw new Error(`no samples of ${name}`);
    return summarize(values);
  }
}
