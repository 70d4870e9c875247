import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { BackupScheduler } from '../../core/content/backup-scheduler.js';
import { createLogger } from '../../core/observability/logger.js';

const until = async (predicate: () => boolean, what: string) => {
  const deadline = Date.now() + 10_000;
  while (!predicate()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('BackupScheduler', () => {
  it('retries a failing backup with doubling delays, counts the failure and keeps scheduling', async () => {
    const calls: number[] = [];
    const metrics = new Registry();
    const logs: string[] = [];
    const scheduler = new BackupScheduler({
      periodMs: 20,
      jitter: 0,
      retries: 3,
      retryDelayMs: 30,
      metrics,
      log: createLogger({ level: 'debug', sink: { write: (l: string) => logs.push(l) } }),
      backup: async () => {
        calls.push(Date.now());
        if (calls.length <= 4) throw new Error('storage down');
        return 'stored';
      },
    });
    scheduler.add('ws');
    await until(() => calls.length >= 5, 'the run after the failed one');
    scheduler.stop();
    const gaps = calls.slice(1, 4).map((t, i) => t - calls[i]!);
    assert.ok(gaps[0]! >= 25 && gaps[1]! >= 55 && gaps[2]! >= 115, `backoff doubles: ${gaps.join(', ')} ms`);
    const text = await metrics.metrics();
    assert.match(text, /wsd_periodic_backups_total\{outcome="failed"\} 1/);
    assert.match(text, /wsd_periodic_backups_total\{outcome="stored"\} 1/);
    assert.ok(logs.some((l) => /periodic backup failed; next try in one period/.test(l)));
  });

  it('drops workspaces that are gone and does nothing when the period is 0', async () => {
    let calls = 0;
    const log = createLogger({ sink: { write: () => {} } });
    const gone = new BackupScheduler({ periodMs: 10, jitter: 0, retries: 0, retryDelayMs: 1, log, backup: async () => (calls++, 'gone') });
    gone.add('ws');
    await until(() => calls === 1, 'the first run');
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(calls, 1, 'a gone workspace is not rescheduled');
    const off = new BackupScheduler({ periodMs: 0, jitter: 0, retries: 0, retryDelayMs: 1, log, backup: async () => (calls++, 'stored') });
    off.add('ws');
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(calls, 1);
    assert.equal(off.enabled, false);
  });
});
