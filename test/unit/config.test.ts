import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { builtinPlugins } from '../../plugins/builtins.js';
import { ConfigError } from '../../core/config/config-error.js';
import { loadConfig, validateConfig } from '../../core/config/load-config.js';
import { embeddedConfigPath } from '../../core/config/package-root.js';
import { renderDefaults } from '../../core/config/print-defaults.js';
import { coreTokens } from '../../core/kernel/core-tokens.js';
import { PluginCatalog } from '../../core/kernel/registry.js';
import { tempDir } from '../kit/temp-dir.js';

const base = { builtins: builtinPlugins, coreTokens, source: 'test.yaml', baseDir: '/srv/wsd', env: {} };

async function issuesOf(raw: unknown, env: NodeJS.ProcessEnv = {}) {
  try {
    await validateConfig(raw, { ...base, env });
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail('config was accepted');
}

describe('config', () => {
  it('applies defaults: local storage, no quota, working area under the data folder', async () => {
    const config = await validateConfig({}, base);
    assert.equal(config.root.http.address, '127.0.0.1:9500');
    assert.deepEqual(config.paths, { dataDir: '/srv/wsd/wsd-data', workingArea: '/srv/wsd/wsd-data/workspaces', stateDir: '/srv/wsd/wsd-data/state' });
    assert.deepEqual(config.plan.map((p) => `${p.plugin.kind}/${p.plugin.id}`), ['storage/local', 'quota/none', 'initializer/empty', 'initializer/backup', 'initializer/snapshot', 'initializer/composite', 'initializer/git', 'initializer/prebuild', 'initializer/download', 'health/working-area']);
    assert.deepEqual(config.pluginConfigs.get('health/working-area'), { critical: true });
  });

  it('reports an unknown key and a wrong type together, each with its path', async () => {
    const issues = await issuesOf({ colour: 'blue', log: { level: 'loud' }, http: { address: 9500 }, storage: { local: { root: 3 } } });
    assert.deepEqual(issues.sort(), [
      'colour: unknown key',
      'http.address: Invalid input: expected string, received number',
      'log.level: Invalid option: expected one of "debug"|"info"|"warn"|"error"',
      'storage.local.root: Invalid input: expected string, received number',
    ]);
  });

  it('checks sections of plugins that are not chosen, and names unknown plugin sections', async () => {
    const issues = await issuesOf({ storage: { plugin: 'local', s4: { bucket: 'x' } }, health: { 'working-area': { critcal: true } } });
    // The known list grows with every storage plugin; what matters is that it names them.
    assert.equal(issues.length, 2, issues.join('\n'));
    assert.match(issues[0]!, /^storage\.s4: unknown storage plugin "s4" \(known: local(, [a-z0-9-]+)*\)$/);
    assert.equal(issues[1], 'health.working-area.critcal: unknown key');
  });

  it('validates addresses', async () => {
    assert.deepEqual(await issuesOf({ http: { address: 'localhost' } }), ['http.address: must be host:port, e.g. 127.0.0.1:9500']);
    assert.deepEqual(await issuesOf({ http: { address: '127.0.0.1:70000' } }), ['http.address: port must be at most 65535']);
    const v6 = await validateConfig({ http: { address: '[::1]:0' } }, base);
    assert.equal(v6.root.http.address, '[::1]:0');
  });

  it('resolves ${ENV} references, fallbacks and escapes', async () => {
    const config = await validateConfig(
      { dataDir: '${DATA}/wsd', http: { address: '${HOST:-127.0.0.1}:${PORT}' }, storage: { local: { root: '$${literal}' } } },
      { ...base, env: { DATA: '/var/lib', PORT: '9600' } },
    );
    assert.equal(config.paths.dataDir, '/var/lib/wsd');
    assert.equal(config.root.http.address, '127.0.0.1:9600');
    assert.deepEqual(config.pluginConfigs.get('storage/local'), { root: '${literal}' });
    assert.deepEqual(await issuesOf({ dataDir: '${NOT_SET_ANYWHERE}' }), ['dataDir: environment variable NOT_SET_ANYWHERE is not set']);
  });

  it('reads secrets from files and environment variables', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'root-path'), '/from/file\n');
    const config = await validateConfig(
      { dataDir: { fromEnv: 'WSD_DATA' }, storage: { local: { root: { fromFile: 'root-path' } } } },
      { ...base, baseDir: dir, env: { WSD_DATA: '/data' } },
    );
    assert.equal(config.paths.dataDir, '/data');
    assert.deepEqual(config.pluginConfigs.get('storage/local'), { root: '/from/file' });
    const issues = await issuesOf({ storage: { local: { root: { fromFile: '/no/such/secret' } } } });
    assert.deepEqual(issues, ['storage.local.root: cannot read /no/such/secret (fromFile): ENOENT']);
  });

  it('finds wsd.yaml in the current folder, resolving paths relative to it', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'wsd.yaml'), 'dataDir: ./state\nhttp:\n  address: 127.0.0.1:0\n');
    const config = await loadConfig({ cwd: dir, builtins: builtinPlugins, coreTokens, env: {} });
    assert.equal(config.source, path.join(dir, 'wsd.yaml'));
    assert.equal(config.paths.dataDir, path.join(dir, 'state'));
  });

  it('finds wsd.config.json too, and takes --config over the search', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'wsd.config.json'), JSON.stringify({ log: { level: 'debug' } }));
    mkdirSync(path.join(dir, 'etc'));
    writeFileSync(path.join(dir, 'etc', 'other.yaml'), 'log:\n  level: warn\n');
    assert.equal((await loadConfig({ cwd: dir, builtins: builtinPlugins, coreTokens })).root.log.level, 'debug');
    const explicit = await loadConfig({ cwd: dir, configPath: 'etc/other.yaml', builtins: builtinPlugins, coreTokens });
    assert.equal(explicit.root.log.level, 'warn');
    assert.equal(explicit.baseDir, path.join(dir, 'etc'));
  });

  it('falls back to the embedded default, relative to the current folder', async () => {
    const dir = tempDir();
    const config = await loadConfig({ cwd: dir, builtins: builtinPlugins, coreTokens, env: {} });
    assert.equal(config.source, `embedded default (${embeddedConfigPath()})`);
    assert.equal(config.paths.dataDir, path.join(dir, 'wsd-data'));
    assert.equal(config.root.storage.plugin, 'local');
    assert.equal(config.root.quota.plugin, 'none');
    assert.match(config.root.http.address, /^127\.0\.0\.1:/);
  });

  it('names the file when it is missing or not valid YAML', async () => {
    const dir = tempDir();
    await assert.rejects(loadConfig({ cwd: dir, configPath: 'nope.yaml', builtins: builtinPlugins, coreTokens }), /cannot read config .*nope\.yaml: file not found/);
    writeFileSync(path.join(dir, 'broken.yaml'), 'storage: [\n');
    await assert.rejects(loadConfig({ cwd: dir, configPath: 'broken.yaml', builtins: builtinPlugins, coreTokens }), /cannot read config .*broken\.yaml/);
  });

  it('prints defaults that are themselves a valid config describing every field', async () => {
    const text = renderDefaults(new PluginCatalog(builtinPlugins));
    assert.match(text, /# Where \/healthz, \/readyz and \/metrics are served\.\n  address: 127\.0\.0\.1:9500/);
    assert.match(text, /# Whether a failure makes the node not ready\.\n {4}critical: true/);
    const config = await validateConfig(parse(text), base);
    const defaults = await validateConfig({}, base);
    assert.deepEqual(config.plan.map((p) => p.configPath), defaults.plan.map((p) => p.configPath));
    assert.deepEqual(config.pluginConfigs, defaults.pluginConfigs);
    assert.deepEqual({ ...config.root, storage: {}, quota: {}, initializers: {}, health: {} }, { ...defaults.root, storage: {}, quota: {}, initializers: {}, health: {} });
  });
});

describe('formatBytes', () => {
  it('writes sizes for people in binary units, one decimal above bytes', async () => {
    const { formatBytes } = await import('../../core/config/units.js');
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(10 * 1024 ** 3), '10.0 GiB');
    assert.equal(formatBytes(3 * 1024 ** 5), '3.0 PiB');
  });
});
