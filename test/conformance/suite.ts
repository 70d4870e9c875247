import { after, before, describe, it } from 'node:test';

/**
 * A conformance suite as data: a named list of async cases plus setup and teardown. The suites assert with
 * `node:assert`, which works under any runner; `runWithNodeTest` is the node:test adapter, and an adapter for
 * another runner is as short (vitest/jest):
 *
 * ```ts
 * describe(suite.name, () => {
 *   beforeAll(() => suite.setup?.(), 120_000);
 *   afterAll(() => suite.teardown?.());
 *   for (const c of suite.cases) {
 *     it(c.name, async (ctx) => {
 *       const { skipped } = await runCase(c);
 *       if (skipped !== undefined) ctx.skip(); // vitest; jest has no runtime skip: log it instead
 *     }, c.timeoutMs ?? 30_000);
 *   }
 * });
 * ```
 *
 * or, with no runner at all, `await runSuite(suite)` (runs every case, returns what passed, failed and was skipped).
 */
export interface ConformanceSuite {
  name: string;
  setup?(): Promise<void> | void;
  teardown?(): Promise<void> | void;
  cases: ConformanceCase[];
}

export interface ConformanceCase {
  name: string;
  run(context: CaseContext): Promise<void> | void;
  /** For slow cases (large objects, real servers); runners default otherwise. */
  timeoutMs?: number;
}

export interface CaseContext {
  /** A line for the runner's output (e.g. why an optional feature was not checked). */
  note(message: string): void;
  /** Ends the case as skipped: the plugin does not declare the optional feature the case checks. */
  skip(reason: string): never;
}

const skipBrand = Symbol.for('wsd.conformance.skip');

/** What `skip` throws; adapters turn it into their runner's skip. */
export interface CaseSkipped {
  readonly [skipBrand]: true;
  readonly reason: string;
}

export function isCaseSkipped(error: unknown): error is CaseSkipped {
  return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[skipBrand] === true;
}

/** Runs one case; resolves `{ skipped }` when the case skipped itself, rejects when it failed. */
export async function runCase(c: ConformanceCase, note: (message: string) => void = () => {}): Promise<{ skipped?: string }> {
  try {
    await c.run({
      note,
      skip(reason: string): never {
        throw { [skipBrand]: true, reason } satisfies CaseSkipped;
      },
    });
    return {};
  } catch (error) {
    if (isCaseSkipped(error)) return { skipped: error.reason };
    throw error;
  }
}

/** The node:test adapter: one `describe` per suite, one `it` per case. */
export function runWithNodeTest(suite: ConformanceSuite): void {
  describe(suite.name, () => {
    before(async () => suite.setup?.());
    after(async () => suite.teardown?.());
    for (const c of suite.cases) {
      it(c.name, c.timeoutMs ? { timeout: c.timeoutMs } : {}, async (t) => {
        const { skipped } = await runCase(c, (message) => t.diagnostic(message));
        if (skipped !== undefined) t.skip(skipped);
      });
    }
  });
}

/** Runs a suite without a test runner: every case in order, setup and teardown around them. */
export async function runSuite(suite: ConformanceSuite): Promise<{ passed: string[]; failed: Array<{ name: string; error: unknown }>; skipped: string[] }> {
  const result = { passed: [] as string[], failed: [] as Array<{ name: string; error: unknown }>, skipped: [] as string[] };
  await suite.setup?.();
  try {
    for (const c of suite.cases) {
      try {
        const { skipped } = await runCase(c);
        (skipped === undefined ? result.passed : result.skipped).push(c.name);
      } catch (error) {
        result.failed.push({ name: c.name, error });
      }
    }
  } finally {
    await suite.teardown?.();
  }
  return result;
}
