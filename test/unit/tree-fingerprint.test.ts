import assert from 'node:assert/strict';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { treeFingerprint } from '../../core/content/tree-fingerprint.js';
import { tempDir } from '../kit/temp-dir.js';

// What skips periodic backups in the tar format: it must change with every change a backup would carry.
it('a tree fingerprint changes with content and metadata, and not with excluded paths', async () => {
  const root = tempDir('fingerprint-');
  mkdirSync(path.join(root, 'src'));
  writeFileSync(path.join(root, 'src', 'a.txt'), 'a');
  const first = await treeFingerprint(root, { exclude: ['.gitpod/ready'] });
  assert.equal(await treeFingerprint(root, { exclude: ['.gitpod/ready'] }), first, 'unchanged: the same');
  mkdirSync(path.join(root, '.gitpod'));
  writeFileSync(path.join(root, '.gitpod', 'ready'), '{}');
  const withMarkerFolder = await treeFingerprint(root, { exclude: ['.gitpod/ready'] });
  writeFileSync(path.join(root, '.gitpod', 'ready'), '{"changed": true}');
  assert.equal(await treeFingerprint(root, { exclude: ['.gitpod/ready'] }), withMarkerFolder, 'an excluded file does not count');
  utimesSync(path.join(root, 'src', 'a.txt'), 1_000, 1_000);
  const touched = await treeFingerprint(root, { exclude: ['.gitpod/ready'] });
  assert.notEqual(touched, withMarkerFolder, 'an mtime counts');
  writeFileSync(path.join(root, 'src', 'a.txt'), 'ab');
  assert.notEqual(await treeFingerprint(root, { exclude: ['.gitpod/ready'] }), touched, 'content (size, mtime) counts');
});
