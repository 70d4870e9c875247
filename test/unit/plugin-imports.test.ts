import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { packageRoot } from '../../core/config/package-root.js';

/** Every import specifier of a TypeScript source file (static imports and re-exports). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'/gm)].map((m) => (m[1] ?? m[2])!);
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [full] : [];
  });
}

describe('plugin imports', () => {
  // A built-in plugin gets exactly what a third-party one gets: the SDK entry point, nothing else of core. Tests
  // beside a plugin may use the test kit; the plugin's own code may not reach into core's internals.
  it('built-in plugins import nothing of core but core/plugin-api', () => {
    const root = packageRoot();
    const offenders: string[] = [];
    for (const file of sources(path.join(root, 'plugins'))) {
      if (path.basename(file) === 'builtins.ts') continue;
      for (const specifier of importsOf(file)) {
        if (!specifier.startsWith('.')) continue;
        const target = path.resolve(path.dirname(file), specifier);
        const inCore = target.startsWith(path.join(root, 'core') + path.sep);
        if (inCore && target !== path.join(root, 'core', 'plugin-api.js')) offenders.push(`${path.relative(root, file)} → ${specifier}`);
      }
    }
    assert.deepEqual(offenders, [], `import these through core/plugin-api.ts instead:\n${offenders.join('\n')}`);
  });
});
