import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { applyChurn, ensureTree, fillFolder, parseSize } from '../../bench/lib/tree.js';
import { tempDir } from '../kit/temp-dir.js';
import { treeManifest } from '../kit/tree-hash.js';

/** What makes two trees the same bytes (mtimes differ between two generations). */
const contents = async (root: string) => (await treeManifest(root)).map(({ path: p, type, size, sha256 }) => ({ p, type, size, sha256 }));
const quiet = () => {};

// The benchmark's figures are only comparable between runs if the tree is, and its working copies are hard links
// into a cache that every later run trusts: both are checked here, on a tiny tree.
describe('bench tree', () => {
  it('is the same bytes for the same seed and size, and different for another seed', async () => {
    const size = 3 * 1024 * 1024;
    const first = ensureTree(tempDir('wsd-bench-tree-'), 'seed-a', size, quiet);
    const second = ensureTree(tempDir('wsd-bench-tree-'), 'seed-a', size, quiet);
    const other = ensureTree(tempDir('wsd-bench-tree-'), 'seed-b', size, quiet);
    assert.deepEqual(await contents(second.root), await contents(first.root));
    assert.notDeepEqual(await contents(other.root), await contents(first.root));
    assert.equal(first.files, (await contents(first.root)).filter((e) => e.type === 'file').length);
    assert.ok(first.smallFiles.length >= 200 && first.gitObjects >= 100, 'source files and git objects at any size');
  });

  it('is found in the cache instead of generated again', () => {
    const cache = tempDir('wsd-bench-tree-');
    let generated = 0;
    ensureTree(cache, 'cached', 2 * 1024 * 1024, () => generated++);
    const logged = generated;
    const again = ensureTree(cache, 'cached', 2 * 1024 * 1024, () => generated++);
    assert.equal(generated, logged, 'nothing logged: no generation the second time');
    assert.equal(again.editTarget.size, 1024 * 1024);
  });

  it('changes about 1 % of a working copy and never writes through its hard links into the cache', async () => {
    const tree = ensureTree(tempDir('wsd-bench-tree-'), 'churn', 3 * 1024 * 1024, quiet);
    const cached = await contents(tree.root);
    const folder = path.join(tempDir('wsd-bench-copy-'), 'ws');
    mkdirSync(folder);
    fillFolder(folder, tree);
    const target = readFileSync(path.join(folder, tree.editTarget.path));
    const churn = applyChurn(folder, tree, 'round 1');
    assert.deepEqual(await contents(tree.root), cached, 'the cached tree is untouched');
    const changed = (await contents(folder)).filter((entry, i) => JSON.stringify(entry) !== JSON.stringify(cached[i]));
    assert.equal(changed.length, churn.files);
    assert.equal(churn.files, Math.ceil(tree.files * 0.01) + 1, '1 % of the files plus the edit target');
    const edited = readFileSync(path.join(folder, tree.editTarget.path));
    assert.equal(edited.length, target.length);
    let differing = 0;
    for (let i = 0; i < edited.length; i++) if (edited[i] !== target[i]) differing++;
    assert.ok(differing > 0.9 * 1024 * 1024 && differing <= 1024 * 1024, `1 MiB edited in place (${differing} bytes differ)`);
  });

  it('reads sizes as the --size flag takes them', () => {
    assert.equal(parseSize('64m'), 64 * 1024 * 1024);
    assert.equal(parseSize('1g'), 1024 ** 3);
    assert.equal(parseSize('5G'), 5 * 1024 ** 3);
    assert.equal(parseSize('512MiB'), 512 * 1024 * 1024);
    assert.throws(() => parseSize('lots'), /--size/);
  });
});
