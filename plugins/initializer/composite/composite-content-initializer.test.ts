import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WsdError } from '../../../core/errors.js';
import type { ContentInitializer } from '../../../core/initializer/content-initializer.js';
import { initializerRun } from '../../../test/kit/initializer-options.js';
import { CompositeContentInitializer } from './composite-content-initializer.js';

/** An initializer that records its calls and optionally fails. */
const recorder = (kind: string, calls: string[], fail = false): ContentInitializer<{ tag?: string }> => ({
  kind,
  async initialize({ spec }) {
    calls.push(`${kind}:${spec.tag ?? ''}`);
    if (fail) throw new WsdError('FAILED_PRECONDITION', `${kind} broke`);
    return { source: kind === 'backup' ? 'from-backup' : 'from-other', stats: [{ kind, durationMs: 1 }] };
  },
});

describe('initializer/composite', () => {
  it('runs children in order and reports the strongest source', async () => {
    const calls: string[] = [];
    const run = initializerRun(
      { initializer: [{ kind: 'empty', spec: { tag: '1' } }, { kind: 'backup', spec: { tag: '2' } }, { kind: 'empty', spec: { tag: '3' } }] },
      { initializers: [recorder('empty', calls) as ContentInitializer, recorder('backup', calls) as ContentInitializer] },
    );
    const result = await new CompositeContentInitializer().initialize(run.options);
    assert.deepEqual(calls, ['empty:1', 'backup:2', 'empty:3']);
    assert.equal(result.source, 'from-backup');
    assert.deepEqual(result.stats.map((s) => s.kind), ['empty', 'backup', 'empty']);
  });

  it('stops at the first failure and names the child', async () => {
    const calls: string[] = [];
    const run = initializerRun(
      { initializer: [{ kind: 'empty', spec: { tag: '1' } }, { kind: 'git', spec: { tag: '2' } }, { kind: 'empty', spec: { tag: '3' } }] },
      { initializers: [recorder('empty', calls) as ContentInitializer, recorder('git', calls, true) as ContentInitializer] },
    );
    await assert.rejects(new CompositeContentInitializer().initialize(run.options), (e: WsdError) => {
      assert.equal(e.code, 'FAILED_PRECONDITION');
      assert.match(e.message, /^initializer\.composite\.initializer\[1\] \(git\): git broke$/);
      return true;
    });
    assert.deepEqual(calls, ['empty:1', 'git:2']);
  });
});
