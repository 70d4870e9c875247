import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../core/config/config-error.js';
import { WsdError } from '../../core/errors.js';
import { healthCheckToken } from '../../core/health/health-check.js';
import { pathsToken } from '../../core/kernel/core-tokens.js';
import { definePlugin, skip, type AnyPlugin, type Requirements } from '../../core/kernel/plugin.js';
import { createToken } from '../../core/kernel/token.js';
import { quotaStrategyToken } from '../../core/quota/quota-strategy.js';
import { storageBackendToken } from '../../core/storage/storage-backend.js';
import { memoryStorage, recordingQuota, settableHealthCheck } from '../kit/fakes.js';
import { startTestKernel } from '../kit/start-test-kernel.js';
import { z } from 'zod';

/** Plugins that log their lifecycle into `events`. */
function tracing(events: string[]) {
  const hooks = (name: string) => ({
    start: () => void events.push(`start ${name}`),
    stop: () => void events.push(`stop ${name}`),
  });
  return {
    storage: (id: string, requires = {}) =>
      definePlugin({
        kind: 'storage',
        id,
        requires,
        create: () => Object.assign(memoryStorage(), hooks(`storage/${id}`)),
      }) as AnyPlugin,
    quota: (id: string, requires = {}) =>
      definePlugin({ kind: 'quota', id, requires, create: () => Object.assign(recordingQuota(), hooks(`quota/${id}`)) }) as AnyPlugin,
    health: (id: string, options: { requires?: Requirements; create?: () => unknown } = {}) =>
      definePlugin({
        kind: 'health',
        id,
        requires: options.requires ?? {},
        create: (options.create ?? (() => Object.assign(settableHealthCheck(id), hooks(`health/${id}`)))) as never,
      }) as AnyPlugin,
  };
}

const expectConfigError = async (promise: Promise<unknown>, ...fragments: RegExp[]) => {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    for (const fragment of fragments) assert.match(error.message, fragment);
    return true;
  });
};

describe('kernel', () => {
  it('starts plugins in dependency order and stops them in reverse', async () => {
    const events: string[] = [];
    const p = tracing(events);
    // storage normally starts first; requiring the quota strategy must move it after quota/q.
    const { kernel, stop } = await startTestKernel({
      plugins: [p.storage('s', { quota: quotaStrategyToken }), p.quota('q'), p.health('h', { requires: { storage: storageBackendToken } })],
      config: { storage: { plugin: 's' }, quota: { plugin: 'q' }, health: { h: {} } },
    });
    assert.deepEqual(events, ['start quota/q', 'start storage/s', 'start health/h']);
    assert.deepEqual(
      kernel.statuses().map((s) => `${s.kind}/${s.id}:${s.status}`),
      ['quota/q:ok', 'storage/s:ok', 'initializer/empty:ok', 'initializer/backup:ok', 'initializer/snapshot:ok', 'initializer/composite:ok', 'initializer/git:ok', 'initializer/prebuild:ok', 'initializer/download:ok', 'health/h:ok'],
    );
    await stop();
    assert.deepEqual(events.slice(3), ['stop health/h', 'stop storage/s', 'stop quota/q']);
    await stop(); // idempotent
    assert.equal(events.length, 6);
  });

  it('hands each plugin its validated config (with defaults) and the services it requires', async () => {
    let seen: unknown;
    const plugin = definePlugin({
      kind: 'health',
      id: 'configured',
      configSchema: z.strictObject({ threshold: z.number().default(7), label: z.string() }),
      requires: { storage: storageBackendToken, paths: pathsToken },
      create: (ctx) => {
        seen = { config: ctx.config, hasStorage: typeof ctx.services.storage.put === 'function', paths: ctx.services.paths };
        return settableHealthCheck('configured');
      },
    });
    const { config, stop } = await startTestKernel({ plugins: [plugin], config: { health: { configured: { label: 'x' } } } });
    assert.deepEqual(seen, { config: { threshold: 7, label: 'x' }, hasStorage: true, paths: config.paths });
    await stop();
  });

  it('refuses a dependency cycle, naming the loop', async () => {
    const p = tracing([]);
    await expectConfigError(
      startTestKernel({
        plugins: [p.storage('s', { quota: quotaStrategyToken }), p.quota('q', { storage: storageBackendToken })],
        config: { storage: { plugin: 's' }, quota: { plugin: 'q' } },
      }),
      /plugin dependency cycle: (storage\/s → quota\/q → storage\/s|quota\/q → storage\/s → quota\/q)/,
    );
  });

  it('refuses a duplicate kind/id, naming both sources', async () => {
    const p = tracing([]);
    await expectConfigError(startTestKernel({ plugins: [p.storage('local')] }), /duplicate plugin storage\/local: defined by built-in and by test/);
  });

  it('refuses a missing dependency', async () => {
    const widget = createToken<object>('acme.widget.v1');
    const p = tracing([]);
    await expectConfigError(
      startTestKernel({ plugins: [p.health('needy', { requires: { widget } })], config: { health: { needy: {} } } }),
      /health\.needy: health\/needy requires acme\.widget\.v1 \(as "widget"\), which no enabled plugin provides/,
    );
  });

  it('refuses a config that names an unknown plugin', async () => {
    await expectConfigError(
      startTestKernel({ config: { storage: { plugin: 'nope' }, initializers: { svn: {} } } }),
      /storage\.nope: unknown storage plugin "nope" \(known: local(, [a-z0-9-]+)*\)/,
      /initializers\.svn: unknown initializer plugin "svn" \(known: empty, backup, snapshot, composite, git, prebuild, download\)/,
    );
  });

  it('records a skipped plugin apart from failures and keeps running', async () => {
    const p = tracing([]);
    const { kernel, stop } = await startTestKernel({
      plugins: [p.health('xfs-only', { create: () => skip('no XFS project quota on /') }), p.health('fine')],
      config: { health: { 'xfs-only': {}, fine: {} } },
    });
    const status = kernel.statuses().find((s) => s.id === 'xfs-only');
    assert.deepEqual(status, { kind: 'health', id: 'xfs-only', source: 'test', status: 'skipped', reason: 'no XFS project quota on /' });
    assert.deepEqual(kernel.get(healthCheckToken).map((h) => h.name), ['fine']);
    assert.ok(kernel.running);
    const metrics = await kernel.metrics.getSingleMetricAsString('wsd_plugin_status');
    assert.match(metrics, /wsd_plugin_status\{kind="health",id="xfs-only",status="skipped"\} 1/);
    await stop();
  });

  it('refuses to start when the single storage or quota plugin skips', async () => {
    const quota = definePlugin({ kind: 'quota', id: 'fake-xfs', create: ({ skip }) => skip('working area is not on XFS') });
    const { kernel } = await startTestKernel({ plugins: [quota], config: { quota: { plugin: 'fake-xfs' } }, noStart: true });
    await assert.rejects(kernel.start(), /quota\/fake-xfs was skipped \(working area is not on XFS\); wsd needs a working quota plugin/);
  });

  it('fails start-up when a plugin fails, and stops what had started', async () => {
    const events: string[] = [];
    const p = tracing(events);
    const boom = p.health('boom', {
      create: () => {
        throw new Error('cannot reach the thing');
      },
    });
    const { kernel } = await startTestKernel({
      plugins: [p.storage('s'), boom],
      config: { storage: { plugin: 's' }, health: { boom: {} } },
      noStart: true,
    });
    await assert.rejects(kernel.start(), (error: unknown) => {
      assert.ok(error instanceof WsdError && error.code === 'FAILED_PRECONDITION');
      assert.match(error.message, /health\/boom failed: cannot reach the thing/);
      return true;
    });
    assert.deepEqual(events, [], 'nothing was started, so nothing needs stopping');
    assert.equal(kernel.statuses().find((s) => s.id === 'boom')?.status, 'failed');
  });

  it('stops started plugins in reverse when a start hook fails', async () => {
    const events: string[] = [];
    const p = tracing(events);
    const bad = p.health('bad', {
      create: () => ({ ...settableHealthCheck('bad'), start: () => Promise.reject(new Error('port in use')) }),
    });
    const { kernel } = await startTestKernel({
      plugins: [p.storage('s'), p.quota('q'), bad],
      config: { storage: { plugin: 's' }, quota: { plugin: 'q' }, health: { bad: {} } },
      noStart: true,
    });
    await assert.rejects(kernel.start(), /health\/bad: start failed: port in use/);
    assert.deepEqual(events, ['start storage/s', 'start quota/q', 'stop quota/q', 'stop storage/s']);
  });

  it('gives each kernel its own container', async () => {
    const a = await startTestKernel();
    const b = await startTestKernel();
    assert.notEqual(a.kernel.get(storageBackendToken), b.kernel.get(storageBackendToken));
    assert.notEqual(a.kernel.get(pathsToken).workingArea, b.kernel.get(pathsToken).workingArea);
    await Promise.all([a.stop(), b.stop()]);
  });

  it('lets tests override a service; the plugins of that kind are not created', async () => {
    const fake = memoryStorage();
    const { kernel, stop } = await startTestKernel({ overrides: [{ token: storageBackendToken, value: fake }] });
    assert.equal(kernel.get(storageBackendToken), fake);
    assert.equal(kernel.statuses().find((s) => s.kind === 'storage')?.status, 'skipped');
    await stop();
  });

  it('resolves required tokens by id, so a plugin with its own copy of the token works', async () => {
    const foreignStorageToken = { id: 'wsd.storage.v1', key: Symbol('elsewhere'), multiple: false };
    let got: unknown;
    const plugin = definePlugin({
      kind: 'health',
      id: 'foreign',
      requires: { storage: foreignStorageToken },
      create: (ctx) => {
        got = ctx.services.storage;
        return settableHealthCheck('foreign');
      },
    });
    const { kernel, stop } = await startTestKernel({ plugins: [plugin], config: { health: { foreign: {} } } });
    assert.equal(got, kernel.get(storageBackendToken));
    await stop();
  });

  it('keeps two kernels in one process apart: each resolves its own instances only', async () => {
    const a = memoryStorage();
    const b = memoryStorage();
    const one = await startTestKernel({ overrides: [{ token: storageBackendToken, value: a }] });
    const two = await startTestKernel({ overrides: [{ token: storageBackendToken, value: b }] });
    try {
      assert.equal(one.kernel.get(storageBackendToken), a);
      assert.equal(two.kernel.get(storageBackendToken), b);
      assert.notEqual(one.kernel.get(healthCheckToken)[0], two.kernel.get(healthCheckToken)[0], 'plugin instances are per kernel');
    } finally {
      await one.stop();
      await two.stop();
    }
  });
});
