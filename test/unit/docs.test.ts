import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '../../core/config/config-error.js';
import { validateConfig } from '../../core/config/load-config.js';
import { packageRoot } from '../../core/config/package-root.js';
import { coreTokens } from '../../core/kernel/core-tokens.js';
import { builtinPlugins } from '../../plugins/builtins.js';

/** Docs that drift are bugs users meet first: these checks keep the parts that can be checked true. */
const root = packageRoot();

function markdownFiles(): string[] {
  const files = ['README.md'];
  const walk = (dir: string) => {
    for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const relative = path.join(dir, entry.name);
      if (entry.isDirectory() && entry.name !== 'node_modules' && entry.name !== 'dist') walk(relative);
      else if (entry.name.endsWith('.md')) files.push(relative);
    }
  };
  for (const dir of ['docs', 'plugins', 'bench', 'deploy']) if (existsSync(path.join(root, dir))) walk(dir);
  return files;
}

describe('docs', () => {
  it('link only to files that exist', () => {
    const broken: string[] = [];
    let checked = 0;
    for (const file of markdownFiles()) {
      const text = readFileSync(path.join(root, file), 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target!) || target!.startsWith('#')) continue; // URLs and anchors in the same page
        const local = decodeURIComponent(target!.split('#')[0]!);
        checked++;
        if (!existsSync(path.resolve(root, path.dirname(file), local))) broken.push(`${file}: ${target}`);
      }
    }
    assert.deepEqual(broken, []);
    assert.ok(checked > 30, `links checked: ${checked}`);
  });

  it("show the config error for an unknown plugin as wsd writes it today (the known list included)", async () => {
    const doc = readFileSync(path.join(root, 'docs', 'configuration.md'), 'utf8');
    const documented = /^ {2}- (health\.disk-spaec: .*)$/m.exec(doc)?.[1];
    assert.ok(documented, 'docs/configuration.md shows the health.disk-spaec example');
    const error = await validateConfig({ health: { 'disk-spaec': {} } }, { builtins: builtinPlugins, coreTokens, source: 'x.yaml', baseDir: root, env: {} }).then(
      () => assert.fail('the config is invalid'),
      (e: unknown) => e as ConfigError,
    );
    assert.ok(error instanceof ConfigError);
    assert.ok(error.message.split('\n').some((line) => line.trim() === `- ${documented}`), `documented: ${documented}\nwsd says:\n${error.message}`);
  });

  it('npm ci && npm test builds once (no install-time build next to the test command’s own)', () => {
    const { scripts } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.match(scripts.test!, /npm run build/, 'the test command builds what it tests');
    for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) assert.equal(scripts[hook], undefined, `${hook} would build a second time`);
  });
});
