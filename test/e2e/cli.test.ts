import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runWsd, startDaemonProcess } from '../kit/daemon-process.js';
import { tempDir } from '../kit/temp-dir.js';

function configFile(dir: string, yaml: string): string {
  const file = path.join(dir, 'wsd.yaml');
  // Every daemon in a test takes free ports, so tests can run side by side.
  writeFileSync(file, yaml.includes('api:') ? yaml : `api:\n  address: 127.0.0.1:0\n${yaml}`);
  return file;
}

const get = async (address: string, route: string) => {
  const res = await fetch(`http://${address}${route}`);
  return { status: res.status, text: await res.text() };
};

describe('wsd CLI', () => {
  it('runs the daemon: probes, metrics, one log line per plugin, clean exit on SIGTERM', async () => {
    const dir = tempDir();
    const daemon = await startDaemonProcess({ args: ['--config', configFile(dir, 'http:\n  address: 127.0.0.1:0\n')] });
    try {
      const pluginLines = daemon.logs.filter((l) => l.msg === 'plugin').map((l) => `${l.kind}/${l.id}:${l.status}`);
      assert.deepEqual(pluginLines, ['storage/local:ok', 'quota/none:ok', 'initializer/empty:ok', 'initializer/backup:ok', 'initializer/snapshot:ok', 'initializer/composite:ok', 'initializer/git:ok', 'initializer/prebuild:ok', 'initializer/download:ok', 'health/working-area:ok']);

      assert.deepEqual(await get(daemon.httpAddress, '/healthz'), { status: 200, text: 'ok\n' });
      const ready = await get(daemon.httpAddress, '/readyz');
      assert.equal(ready.status, 200);
      assert.deepEqual(JSON.parse(ready.text), { ready: true, checks: [{ name: 'working-area', critical: true, status: 'ok' }] });

      const metrics = await get(daemon.httpAddress, '/metrics');
      assert.equal(metrics.status, 200);
      assert.match(metrics.text, /^wsd_build_info\{version="\d+\.\d+\.\d+",node_version="[^"]+"\} 1$/m);
      assert.match(metrics.text, /^wsd_plugin_status\{kind="storage",id="local",status="ok"\} 1$/m);
      assert.match(metrics.text, /^process_cpu_seconds_total /m, 'default process metrics');
      assert.match(metrics.text, /^wsd_working_area_free_bytes [1-9]\d*$/m);
      assert.match(metrics.text, /^wsd_workspaces\{state="ready"\} 0$/m);
      assert.equal((await get(daemon.httpAddress, '/nope')).status, 404);
    } finally {
      assert.equal(await daemon.stop('SIGTERM'), 0);
    }
    assert.ok(daemon.logs.some((l) => l.msg === 'stopped'));
  });

  it('turns not ready when a critical health check fails', async () => {
    const dir = tempDir();
    const daemon = await startDaemonProcess({ args: ['--config', configFile(dir, 'dataDir: ./d\nhttp:\n  address: 127.0.0.1:0\n')] });
    try {
      const workingArea = path.join(dir, 'd', 'workspaces');
      rmSync(workingArea, { recursive: true });
      writeFileSync(workingArea, 'not a folder');
      const ready = await get(daemon.httpAddress, '/readyz');
      assert.equal(ready.status, 503);
      assert.deepEqual(JSON.parse(ready.text).checks, [
        { name: 'working-area', critical: true, status: 'failing', reason: `${workingArea} is not a folder` },
      ]);
      assert.equal((await get(daemon.httpAddress, '/healthz')).status, 200, 'liveness is not readiness');
    } finally {
      assert.equal(await daemon.stop('SIGINT'), 0);
    }
  });

  it('config validate prints every error with its path and exits non-zero', async () => {
    const dir = tempDir();
    const file = configFile(dir, 'colour: blue\nhttp:\n  address: 9500\n');
    const result = await runWsd(['config', 'validate', '--config', file]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /invalid config .*wsd\.yaml:/);
    assert.match(result.stderr, /- colour: unknown key/);
    assert.match(result.stderr, /- http\.address: Invalid input: expected string, received number/);
  });

  it('config validate refuses a config that names a plugin that does not exist', async () => {
    const dir = tempDir();
    // Not s3: that one ships. The known list grows with every storage plugin.
    const result = await runWsd(['config', 'validate', '--config', configFile(dir, 'storage:\n  plugin: s4\n')]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /storage\.s4: unknown storage plugin "s4" \(known: local(, [a-z0-9-]+)*\)/);
  });

  it('config validate accepts the printed defaults', async () => {
    const dir = tempDir();
    const printed = await runWsd(['config', 'print-defaults']);
    assert.equal(printed.code, 0);
    const result = await runWsd(['config', 'validate', '--config', configFile(dir, printed.stdout)]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /valid; plugins in start order: storage\/local, quota\/none, initializer\/empty, initializer\/backup, initializer\/snapshot, initializer\/composite, initializer\/git, initializer\/prebuild, initializer\/download, health\/working-area/);
  });

  it('lists built-ins, and the third-party plugins a config loads', async () => {
    const dir = tempDir();
    writeFileSync(
      path.join(dir, 'greeter.js'),
      `export default { apiVersion: 1, kind: 'health', implements: 'wsd.health.v1', id: 'greeter', description: 'a third-party check',
         create: () => ({ name: 'greeter', critical: false, check: async () => ({ status: 'ok' }) }) };\n`,
    );
    writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}');
    const builtins = await runWsd(['plugins']);
    assert.equal(builtins.code, 0);
    assert.match(builtins.stdout, /^storage +local +built-in/m);
    assert.doesNotMatch(builtins.stdout, /greeter/);

    const file = configFile(dir, 'plugins: [./greeter.js]\nhealth:\n  greeter: {}\n');
    const listed = await runWsd(['plugins', '--config', file]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^health +greeter +\.\/greeter\.js +a third-party check$/m);
    assert.match(listed.stdout, /10\. +health\/greeter +\.\/greeter\.js/);

    const json = JSON.parse((await runWsd(['plugins', '--config', file, '--json'])).stdout);
    assert.deepEqual(json.enabled.map((p: { name: string }) => p.name), ['storage/local', 'quota/none', 'initializer/empty', 'initializer/backup', 'initializer/snapshot', 'initializer/composite', 'initializer/git', 'initializer/prebuild', 'initializer/download', 'health/greeter']);
  });

  it('refuses a third-party plugin built for another API version', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'future.mjs'), `export default { apiVersion: 2, kind: 'health', id: 'future', create() {} };\n`);
    const result = await runWsd(['plugins', '--config', configFile(dir, 'plugins: [./future.mjs]\n')]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /plugins\[0\]: plugin module "\.\/future\.mjs" plugin health\/future was built for plugin API version 2, but this wsd supports version 1/);
  });

  it('refuses a third-party plugin that implements a contract version this wsd does not serve', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'v2.mjs'), `export default { apiVersion: 1, kind: 'health', implements: 'wsd.health.v2', id: 'v2', create() {} };\n`);
    const result = await runWsd(['plugins', '--config', configFile(dir, 'plugins: [./v2.mjs]\n')]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /health\/v2 implements wsd\.health\.v2, but this wsd serves wsd\.health\.v1 for health plugins/);
    writeFileSync(path.join(dir, 'silent.mjs'), `export default { apiVersion: 1, kind: 'health', id: 'silent', create() {} };\n`);
    const silent = await runWsd(['plugins', '--config', configFile(dir, 'plugins: [./silent.mjs]\n')]);
    assert.equal(silent.code, 2);
    assert.match(silent.stderr, /health\/silent does not say which contract it implements \(implements: 'wsd\.health\.v1'\)/);
  });

  it('exits non-zero with the reason when a plugin fails at start-up', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'broken.mjs'), `export default { apiVersion: 1, kind: 'health', implements: 'wsd.health.v1', id: 'broken', create() { throw new Error('no such device'); } };\n`);
    const result = await runWsd(['run', '--config', configFile(dir, 'plugins: [./broken.mjs]\nhttp:\n  address: 127.0.0.1:0\nhealth:\n  broken: {}\n')]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /wsd cannot start:\n {2}- health\/broken failed: no such device/);
    const lines = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.ok(
      lines.some((l) => l.msg === 'plugin' && l.kind === 'health' && l.id === 'broken' && l.source === './broken.mjs' && l.status === 'failed' && l.reason === 'no such device'),
      result.stdout,
    );
  });

  it('a port in use at start: one JSON log line and one clear message naming the address and the setting', async () => {
    const first = await startDaemonProcess({ args: ['--config', configFile(tempDir(), 'http:\n  address: 127.0.0.1:0\n')] });
    try {
      for (const [setting, yaml] of [
        ['api.address', `api:\n  address: ${first.grpcAddress}\n  insecure: true\nhttp:\n  address: 127.0.0.1:0\n`],
        ['http.address', `http:\n  address: ${first.httpAddress}\n`],
      ] as const) {
        const result = await runWsd(['run', '--config', configFile(tempDir(), yaml)]);
        assert.equal(result.code, 1, setting);
        // stdout is the log: JSON only (grpc-js's own logger included); stderr the reason, once.
        const lines = result.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, any>);
        const address = setting === 'api.address' ? first.grpcAddress : first.httpAddress;
        const mentions = lines.filter((l) => JSON.stringify(l).includes(address) && l.msg !== 'starting');
        assert.equal(mentions.length, 1, `${setting}: the address is named once: ${result.stdout}`);
        assert.equal(mentions[0]!.msg, 'start failed');
        assert.equal(mentions[0]!.level, 'error');
        const reason = `${setting} ${address}: the address is in use (another wsd or another program listens there); pick another port or stop that program`;
        assert.equal(mentions[0]!.error.message, reason);
        assert.equal(result.stderr, `${reason}\n`);
      }
    } finally {
      assert.equal(await first.stop(), 0);
    }
  });
});
