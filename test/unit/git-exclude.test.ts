import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { excludeFromGit } from '../../core/content/git-exclude.js';
import { silentLogger } from '../../core/observability/logger.js';
import { excludeReadyMarkerFromGit } from '../../core/workspace/ready-marker.js';
import { sh } from '../kit/git-fixtures.js';
import { tempDir } from '../kit/temp-dir.js';

function repo(): string {
  const dir = tempDir('wsd-exclude-');
  sh(dir, 'init', '-q');
  return dir;
}

describe('the ready marker is kept out of the user\'s git status', () => {
  it('adds the marker to .git/info/exclude once, and git status no longer lists it', async () => {
    const dir = repo();
    mkdirSync(path.join(dir, '.gitpod'));
    writeFileSync(path.join(dir, '.gitpod', 'ready'), '{}\n');
    assert.match(sh(dir, 'status', '--porcelain'), /\.gitpod\//);
    const exclude = path.join(dir, '.git', 'info', 'exclude');
    writeFileSync(exclude, '# the user\'s own\n*.log'); // no newline at the end
    await excludeReadyMarkerFromGit({ folder: dir, marker: '.gitpod/ready', checkouts: [''], log: silentLogger });
    await excludeReadyMarkerFromGit({ folder: dir, marker: '.gitpod/ready', checkouts: [''], log: silentLogger });
    assert.equal(readFileSync(exclude, 'utf8'), '# the user\'s own\n*.log\n/.gitpod/ready\n');
    assert.equal(sh(dir, 'status', '--porcelain'), '');
  });

  it('creates .git/info/exclude when the repository has none, and anchors the path of a checkout below the folder', async () => {
    const folder = tempDir('wsd-exclude-folder-');
    mkdirSync(path.join(folder, 'sub'));
    sh(path.join(folder, 'sub'), 'init', '-q');
    rmSync(path.join(folder, 'sub', '.git', 'info'), { recursive: true, force: true });
    await excludeReadyMarkerFromGit({ folder, marker: 'sub/.ready [x]', checkouts: ['sub', 'elsewhere'], log: silentLogger });
    assert.equal(readFileSync(path.join(folder, 'sub', '.git', 'info', 'exclude'), 'utf8'), '/.ready\\ \\[x\\]\n');
    writeFileSync(path.join(folder, 'sub', '.ready [x]'), '{}\n');
    assert.equal(sh(path.join(folder, 'sub'), 'status', '--porcelain'), '');
  });

  it('never writes through a symlinked .git, .git/info or exclude file, or a gitfile', async () => {
    const outside = tempDir('wsd-exclude-outside-');
    const target = path.join(outside, 'exclude');
    writeFileSync(target, 'outside\n');

    const linkedInfo = repo();
    rmSync(path.join(linkedInfo, '.git', 'info'), { recursive: true, force: true });
    symlinkSync(outside, path.join(linkedInfo, '.git', 'info'));
    assert.equal(await excludeFromGit(linkedInfo, '/.gitpod/ready'), 'skipped');

    const linkedFile = repo();
    rmSync(path.join(linkedFile, '.git', 'info', 'exclude'), { force: true });
    symlinkSync(target, path.join(linkedFile, '.git', 'info', 'exclude'));
    assert.equal(await excludeFromGit(linkedFile, '/.gitpod/ready'), 'skipped');

    const linkedGit = tempDir('wsd-exclude-linked-git-');
    mkdirSync(path.join(outside, 'info'));
    symlinkSync(outside, path.join(linkedGit, '.git'));
    assert.equal(await excludeFromGit(linkedGit, '/.gitpod/ready'), 'skipped');

    const gitfile = tempDir('wsd-exclude-gitfile-');
    writeFileSync(path.join(gitfile, '.git'), `gitdir: ${outside}\n`);
    assert.equal(await excludeFromGit(gitfile, '/.gitpod/ready'), 'skipped');

    assert.equal(readFileSync(target, 'utf8'), 'outside\n');
    assert.equal(existsSync(path.join(outside, 'info', 'exclude')), false);
  });

  it('leaves a folder that is not a repository alone', async () => {
    const dir = tempDir('wsd-exclude-plain-');
    assert.equal(await excludeFromGit(dir, '/.gitpod/ready'), 'skipped');
    assert.equal(existsSync(path.join(dir, '.git')), false);
  });
});
