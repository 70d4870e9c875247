import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { memoryStorage } from '../../../test/kit/fakes.js';
import { storageHealthPlugin } from './plugin.js';
import { StorageHealthCheck } from './storage-health-check.js';

/** memoryStorage that counts puts (the billed requests) and fails them while `broken` is set. */
function countingStorage(): ReturnType<typeof memoryStorage> & { puts: number; broken: boolean } {
  const inner = memoryStorage();
  const storage = Object.assign(Object.create(inner) as typeof inner, { puts: 0, broken: false });
  storage.put = async (options) => {
    storage.puts++;
    if (storage.broken) throw new Error('bucket unreachable');
    return inner.put(options);
  };
  return storage;
}

describe('health/storage probe interval', () => {
  const signal = new AbortController().signal;

  it('probes on the first check, answers from the cache until the interval passes, then probes again', async () => {
    const storage = countingStorage();
    let now = 1_000_000;
    const check = new StorageHealthCheck(storage, { critical: true, intervalMs: 60_000, now: () => now });

    assert.deepEqual(await check.check(signal), { status: 'ok' });
    assert.equal(storage.puts, 1, 'the first check probes');

    storage.broken = true;
    now += 59_999;
    assert.deepEqual(await check.check(signal), { status: 'ok' }, 'within the interval: the cached result');
    assert.equal(storage.puts, 1, 'no request within the interval');

    now += 1;
    const failing = await check.check(signal);
    assert.equal(failing.status, 'failing');
    assert.match(failing.reason!, /^storage: .*bucket unreachable/);
    assert.equal(storage.puts, 2);

    storage.broken = false;
    now += 30_000;
    assert.equal((await check.check(signal)).status, 'failing', 'a failure is cached as long');
    now += 30_000;
    assert.deepEqual(await check.check(signal), { status: 'ok' });
    assert.equal(storage.puts, 3);
    assert.deepEqual([...storage.objects.keys()], [], 'every probe object is deleted again');
  });

  it('shares one probe among checks that arrive while it runs', async () => {
    const storage = countingStorage();
    const check = new StorageHealthCheck(storage, { critical: false, intervalMs: 60_000 });
    const results = await Promise.all([check.check(signal), check.check(signal), check.check(signal)]);
    assert.deepEqual(results, [{ status: 'ok' }, { status: 'ok' }, { status: 'ok' }]);
    assert.equal(storage.puts, 1);
  });

  it('probes once a minute by default when configured through the plugin', async () => {
    const parsed = await storageHealthPlugin.configSchema!['~standard'].validate({});
    assert.equal(parsed.issues, undefined, 'the empty config is valid');
    assert.deepEqual((parsed as { value: unknown }).value, { critical: false, interval: 60_000 });
    const custom = await storageHealthPlugin.configSchema!['~standard'].validate({ interval: '5m' });
    assert.deepEqual((custom as { value: unknown }).value, { critical: false, interval: 300_000 });
  });
});
