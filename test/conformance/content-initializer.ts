import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { isWsdError } from '../../core/errors.js';
import type { ContentInitializer, InitializeOptions } from '../../core/initializer/content-initializer.js';
import { initializerRun } from '../kit/initializer-options.js';
import { runWithNodeTest, type ConformanceCase, type ConformanceSuite } from './suite.js';

export interface InitializerConformanceCase<Spec> {
  /** Builds the initializer under test. */
  create(): ContentInitializer<Spec> | Promise<ContentInitializer<Spec>>;
  /** A spec that succeeds, and how to prepare for it (storage with a backup, a repository, a server...). */
  valid(): Promise<{ spec: Spec; prepare?: (options: InitializeOptions<Spec>) => Promise<void> }>;
  /** A spec that must be refused with INVALID_ARGUMENT (e.g. a path outside the folder), if the kind has one. */
  invalid?: Spec;
  /** Other initializers the kind calls through the registry (composite, prebuild). */
  helpers?: () => ContentInitializer[];
  /** The kind does real work (I/O, child processes): with an already aborted signal it must refuse to start. */
  abortable?: boolean;
}

/**
 * The ContentInitializer contract, as tests every initializer plugin runs:
 * it reports its kind and stats, writes nothing outside the workspace folder, refuses bad specs with
 * INVALID_ARGUMENT naming the field, and fails with WsdErrors only.
 */
export function contentInitializerConformance<Spec>(kind: string, c: InitializerConformanceCase<Spec>): ConformanceSuite {
  const cases: ConformanceCase[] = [];
  const it = (name: string, run: ConformanceCase['run']) => void cases.push({ name, run });
  {
    it('declares its kind and initializes a fresh folder, reporting source and stats', async () => {
      const initializer = await c.create();
      assert.equal(initializer.kind, kind);
      const { spec, prepare } = await c.valid();
      const run = initializerRun(spec, { initializers: c.helpers?.() ?? [] });
      await prepare?.(run.options);
      const result = await initializer.initialize(run.options);
      assert.ok(['from-backup', 'from-prebuild', 'from-other'].includes(result.source), result.source);
      assert.ok(result.stats.length > 0, 'at least one stats entry');
      for (const s of result.stats) {
        assert.equal(typeof s.kind, 'string');
        assert.ok(s.durationMs >= 0);
        if (s.bytes !== undefined) assert.ok(s.bytes >= 0);
      }
      assert.deepEqual(readdirSync(run.sandbox), ['workspace'], 'nothing written next to the workspace folder');
    });

    it('fails with WsdErrors only, and refuses bad specs with INVALID_ARGUMENT naming the field', async () => {
      const initializer = await c.create();
      if (c.invalid !== undefined) {
        const run = initializerRun(c.invalid, { initializers: c.helpers?.() ?? [] });
        await assert.rejects(initializer.initialize(run.options), (error: unknown) => {
          assert.ok(isWsdError(error), `expected WsdError, got ${String(error)}`);
          assert.equal(error.code, 'INVALID_ARGUMENT', error.message);
          assert.ok(error.field, 'the error names the field');
          return true;
        });
        assert.deepEqual(readdirSync(run.sandbox), ['workspace']);
      }
      const aborted = new AbortController();
      aborted.abort();
      const { spec, prepare } = await c.valid();
      const run = initializerRun(spec, { initializers: c.helpers?.() ?? [], signal: aborted.signal });
      await prepare?.(run.options);
      const outcome = await initializer.initialize(run.options).then(
        () => 'finished',
        (error: unknown) => {
          const cancelled = isWsdError(error, 'CANCELLED') || (error as Error).name === 'AbortError';
          assert.ok(cancelled, `an aborted initializer fails as cancelled, not with ${String(error)}`);
          return 'cancelled';
        },
      );
      if (c.abortable) assert.equal(outcome, 'cancelled', 'an aborted signal stops the work before it starts');
      assert.deepEqual(readdirSync(run.sandbox), ['workspace']);
    });
  }
  return { name: `ContentInitializer conformance: ${kind}`, cases };
}

/** The initializer suite under node:test (see {@link contentInitializerConformance} for other runners). */
export function describeContentInitializerConformance<Spec>(kind: string, c: InitializerConformanceCase<Spec>): void {
  runWithNodeTest(contentInitializerConformance(kind, c));
}
