import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WsdError } from '../../core/errors.js';
import { retry } from '../../core/retry.js';

const transient = () => new WsdError('UNAVAILABLE', 'try again');

describe('retry', () => {
  it('backs off exponentially, capped by maxDelayMs, with jitter between half and all of each wait', async () => {
    const waits: number[] = [];
    await assert.rejects(
      retry(async () => { throw transient(); }, { attempts: 6, initialDelayMs: 1, maxDelayMs: 4, jitter: 0.5, keepAlive: true, onRetry: (_e, { delayMs }) => void waits.push(delayMs) }),
      /try again/,
    );
    const nominal = [1, 2, 4, 4, 4];
    assert.equal(waits.length, nominal.length);
    waits.forEach((w, i) => assert.ok(w >= nominal[i]! / 2 && w <= nominal[i]!, `wait ${i}: ${w} within [${nominal[i]! / 2}, ${nominal[i]}]`));
    const exact: number[] = [];
    await assert.rejects(retry(async () => { throw transient(); }, { attempts: 4, initialDelayMs: 1, maxDelayMs: 3, keepAlive: true, onRetry: (_e, { delayMs }) => void exact.push(delayMs) }));
    assert.deepEqual(exact, [1, 2, 3], 'without jitter the waits are exact');
  });

  it('ends a wait as soon as the signal aborts', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const run = retry(async () => { throw transient(); }, { initialDelayMs: 60_000, signal: controller.signal, keepAlive: true, onRetry: () => void setImmediate(() => controller.abort()) });
    await assert.rejects(run, (error: unknown) => (error as Error).name === 'AbortError');
    assert.ok(Date.now() - started < 30_000, 'did not wait the full minute');
  });
});
