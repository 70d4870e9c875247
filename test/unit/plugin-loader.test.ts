import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { builtinPlugins } from '../../plugins/builtins.js';
import { ConfigError } from '../../core/config/config-error.js';
import { validateConfig } from '../../core/config/load-config.js';
import { healthCheckToken } from '../../core/health/health-check.js';
import { coreTokens } from '../../core/kernel/core-tokens.js';
import { Kernel } from '../../core/kernel/kernel.js';
import { tempDir } from '../kit/temp-dir.js';

/** A third-party plugin as a plain .js file that imports nothing from wsd. */
const helloPlugin = (apiVersion: number, id = 'hello') => `
export default {
  apiVersion: ${apiVersion},
  kind: 'health',
  implements: 'wsd.health.v1',
  id: '${id}',
  description: 'says hello',
  create: ({ config, log }) => ({
    name: '${id}',
    critical: false,
    async check() { return { status: 'ok' }; },
  }),
};
`;

async function load(dir: string, raw: Record<string, unknown>) {
  return validateConfig({ dataDir: path.join(dir, 'data'), ...raw }, { builtins: builtinPlugins, coreTokens, source: 'x.yaml', baseDir: dir, env: {} });
}

async function loadIssues(dir: string, raw: Record<string, unknown>): Promise<string[]> {
  try {
    await load(dir, raw);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail('accepted');
}

describe('third-party plugin loading', () => {
  it('loads a plain .js plugin named by path, and the kernel runs it', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'hello.mjs'), helloPlugin(1));
    const config = await load(dir, { plugins: ['./hello.mjs'], health: { hello: {}, 'working-area': {} } });
    assert.equal(config.catalog.get('health', 'hello')?.source, './hello.mjs');
    const kernel = new Kernel({ config });
    await kernel.start();
    assert.deepEqual(kernel.get(healthCheckToken).map((h) => h.name), ['hello', 'working-area']);
    await kernel.stop();
  });

  it('loads plugins from a package by name, resolved from the config folder', async () => {
    const dir = tempDir();
    const pkg = path.join(dir, 'node_modules', 'wsd-plugin-greetings');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'wsd-plugin-greetings', type: 'module', main: 'index.js' }));
    writeFileSync(path.join(pkg, 'index.js'), `import hi from './hi.js';\nexport const plugins = [hi];\n`);
    writeFileSync(path.join(pkg, 'hi.js'), helloPlugin(1, 'hi'));
    const config = await load(dir, { plugins: ['wsd-plugin-greetings'], health: { hi: {} } });
    assert.equal(config.catalog.get('health', 'hi')?.source, 'wsd-plugin-greetings');
  });

  it('refuses a plugin built for another API version, saying which', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'old.mjs'), helloPlugin(0, 'old'));
    assert.deepEqual(await loadIssues(dir, { plugins: ['./old.mjs'] }), [
      'plugins[0]: plugin module "./old.mjs" plugin health/old was built for plugin API version 0, but this wsd supports version 1',
    ]);
  });

  it('refuses modules that export no plugin or a malformed one', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'nothing.mjs'), 'export const x = 1;\n');
    writeFileSync(path.join(dir, 'nokind.mjs'), 'export default { apiVersion: 1, kind: "network", id: "x", create() {} };\n');
    writeFileSync(path.join(dir, 'nocreate.mjs'), 'export default { apiVersion: 1, kind: "health", implements: "wsd.health.v1", id: "x" };\n');
    writeFileSync(path.join(dir, 'throws.mjs'), 'throw new Error("bad module");\n');
    assert.deepEqual(await loadIssues(dir, { plugins: ['./nothing.mjs', './nokind.mjs', './nocreate.mjs', './throws.mjs', './missing.mjs'] }), [
      'plugins[0]: plugin module "./nothing.mjs" exports no plugin (expected a default export, "plugins" or "plugin")',
      'plugins[1]: plugin module "./nokind.mjs" has kind "network"; expected one of storage, quota, initializer, health',
      'plugins[2]: plugin module "./nocreate.mjs" health/x has no create() function',
      'plugins[3]: cannot load plugin module "./throws.mjs": bad module',
      `plugins[4]: cannot load plugin module "./missing.mjs": module not found (Cannot find module '${path.join(dir, 'missing.mjs')}' imported from ${path.resolve('dist/core/kernel/plugin-loader.js')})`,
    ]);
  });

  it('refuses a third-party plugin that clashes with a built-in', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'clash.mjs'), helloPlugin(1, 'working-area'));
    assert.deepEqual(await loadIssues(dir, { plugins: ['./clash.mjs'] }), [
      'plugins: duplicate plugin health/working-area: defined by built-in and by ./clash.mjs',
    ]);
  });
});
