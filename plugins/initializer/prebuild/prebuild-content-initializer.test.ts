import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { BackupStore } from '../../../core/content/backup-store.js';
import { silentLogger } from '../../../core/observability/logger.js';
import { memoryStorage } from '../../../test/kit/fakes.js';
import { gitTestPolicy, makeRepos, sh, type TestRepos } from '../../../test/kit/git-fixtures.js';
import { initializerRun } from '../../../test/kit/initializer-options.js';
import { tempDir } from '../../../test/kit/temp-dir.js';
import { GitContentInitializer } from '../git/git-content-initializer.js';
import { PrebuildContentInitializer, type PrebuildSpec } from './prebuild-content-initializer.js';

describe('initializer/prebuild', () => {
  let repos: TestRepos;
  const git = new GitContentInitializer({ retryTimeoutMs: 5000, initialRetryDelayMs: 100, policy: gitTestPolicy });
  before(() => {
    repos = makeRepos(tempDir('wsd-prebuild-repos-'));
  });

  /** A prebuild: a clone of main with build output and a local edit, stored as a snapshot. */
  async function prebuildSnapshot(storage = memoryStorage(), edit = 'prebuilt edit\n') {
    const run = initializerRun({ remote_uri: repos.url('project'), full_clone: true });
    await git.initialize(run.options);
    writeFileSync(path.join(run.dir, 'build-output.txt'), 'built\n');
    writeFileSync(path.join(run.dir, 'README.md'), edit);
    const store = new BackupStore(storage, silentLogger);
    const manifest = await store.write({ owner: 'owner', metaId: 'prebuilds', instanceId: 'pb' }, run.dir, 'snapshot');
    return { storage, name: manifest.object };
  }

  it('restores the snapshot, switches to the target and keeps the local changes', async () => {
    const { storage, name } = await prebuildSnapshot();
    const spec: PrebuildSpec = { prebuild: { snapshot: name }, git: [{ remote_uri: repos.url('project'), target_mode: 'REMOTE_BRANCH', clone_taget: 'dev' }] };
    const run = initializerRun(spec, { storage, initializers: [git] });
    const result = await new PrebuildContentInitializer({ policy: gitTestPolicy }).initialize(run.options);
    assert.equal(result.source, 'from-prebuild');
    assert.equal(sh(run.dir, 'rev-parse', 'HEAD'), repos.dev.tip);
    assert.equal(sh(run.dir, 'rev-parse', '--abbrev-ref', 'HEAD'), 'dev');
    assert.equal(readFileSync(path.join(run.dir, 'build-output.txt'), 'utf8'), 'built\n', 'untracked build output kept');
    assert.equal(readFileSync(path.join(run.dir, 'README.md'), 'utf8'), 'prebuilt edit\n', 'local edit kept');
    assert.equal(readFileSync(path.join(run.dir, 'dev.txt'), 'utf8'), 'dev\n', 'target content present');
  });

  it('keeps the target when local changes conflict, with the changes left in the stash', async () => {
    const { storage, name } = await prebuildSnapshot();
    const spec: PrebuildSpec = { prebuild: { snapshot: name }, git: [{ remote_uri: repos.url('project'), target_mode: 'REMOTE_COMMIT', clone_taget: repos.main.firstCommit }] };
    const run = initializerRun(spec, { storage, initializers: [git] });
    await new PrebuildContentInitializer({ policy: gitTestPolicy }).initialize(run.options);
    assert.equal(sh(run.dir, 'rev-parse', 'HEAD'), repos.main.firstCommit);
    assert.ok(run.logs.some((l) => /conflict with the target/.test(l)));
    assert.match(sh(run.dir, 'stash', 'list'), /wsd: prebuild changes/);
  });

  it('falls back to cloning when the snapshot is missing', async () => {
    const spec: PrebuildSpec = {
      prebuild: { snapshot: 'owner/workspaces/prebuilds/snapshots/20260101T000000000Z-00000000.tar.zst' },
      git: [{ remote_uri: repos.url('project'), checkout_location: 'project' }],
    };
    const run = initializerRun(spec, { initializers: [git] });
    const result = await new PrebuildContentInitializer({ policy: gitTestPolicy }).initialize(run.options);
    assert.equal(result.source, 'from-other');
    assert.equal(sh(path.join(run.dir, 'project'), 'rev-parse', 'HEAD'), repos.main.tip);
    assert.equal(existsSync(path.join(run.dir, 'project', 'build-output.txt')), false);
    assert.ok(run.logs.some((l) => /falling back to cloning/.test(l)));
  });
});
