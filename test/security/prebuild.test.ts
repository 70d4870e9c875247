/**
 * The prebuild initializer's git specs: probe finding #2 (argument injection through refs) for prebuilds, and the
 * same class as #1 (git config → command execution) through the restored checkout's own `.git` — the prebuild
 * snapshot is content a workspace user controlled. Snapshots are planted through the API: a workspace's folder is
 * written to (as its user could), then TakeSnapshot stores it.
 */
import { appendFileSync, cpSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { makeRepos, sh, type TestRepos } from '../kit/git-fixtures.js';
import { assertNotCreated, assertRefusal, markerPath, meta, outcomeText, removeMarkers, settle, startTestDaemon, type TestDaemon } from '../kit/security-fixtures.js';
import { tempDir } from '../kit/temp-dir.js';
import assert from 'node:assert/strict';

describe('security: prebuild git specs and restored checkouts', () => {
  let repos: TestRepos;
  let wsd: TestDaemon;
  let n = 0;
  const id = (label: string) => `${label}-${++n}`;
  const missingSnapshot = 'mallory/workspaces/none/snapshots/20260101T000000000Z-deadbeef.tar.zst';

  /** A snapshot of a workspace holding a clone of `project` at `repo/`, after `prepare` changed it. */
  async function plantPrebuild(prepare: (folder: string, checkout: string) => void = () => {}): Promise<string> {
    const ws = id('pb-src');
    await wsd.client.initWorkspace({ id: ws, metadata: meta(ws), initializer: { empty: {} } });
    const checkout = path.join(wsd.folder(ws), 'repo');
    sh(wsd.folder(ws), 'clone', '-q', repos.url('project'), checkout);
    prepare(wsd.folder(ws), checkout);
    const name = await wsd.client.takeSnapshot(ws);
    await wsd.client.disposeWorkspace(ws);
    return name;
  }

  before(async () => {
    repos = makeRepos(tempDir('wsd-sec-prebuild-repos-'));
    wsd = await startTestDaemon(tempDir('wsd-sec-prebuild-'), { git: { protocols: ['https', 'ssh', 'http', 'file'], localRoots: [repos.root], allowedNetworks: ['127.0.0.1/32'] } });
  });
  after(async () => {
    await wsd?.stop();
    removeMarkers();
  });

  it('#2 argument injection in prebuild git specs: "--upload-pack=…" as clone_taget is refused for a restored prebuild (initializer.prebuild.git[0].clone_taget) and in the fallback clone (initializer.git.clone_taget)', async () => {
    const snapshot = await plantPrebuild();
    const marker = markerPath('prebuild-upload-pack');
    for (const target_mode of ['REMOTE_COMMIT', 'REMOTE_BRANCH', 'LOCAL_BRANCH'] as const) {
      const git = { remote_uri: repos.url('project'), checkout_location: 'repo', target_mode, clone_taget: `--upload-pack=touch ${marker};git-upload-pack` };
      const restored = id('pb-inject');
      const restoredError = await settle(wsd.client.initWorkspace({ id: restored, metadata: meta(restored), initializer: { prebuild: { prebuild: { snapshot }, git: [git] } } }));
      assertNotCreated(marker, `prebuild ${target_mode} clone_taget ran as an option of git (init ${outcomeText(restoredError)})`);
      assertRefusal(restoredError, status.INVALID_ARGUMENT, { field: 'initializer.prebuild.git[0].clone_taget' }, `restored prebuild, ${target_mode}`);

      const fallback = id('pb-fallback-inject');
      const fallbackError = await settle(
        wsd.client.initWorkspace({ id: fallback, metadata: meta(fallback), initializer: { prebuild: { prebuild: { snapshot: missingSnapshot }, git: [git] } } }),
      );
      assertNotCreated(marker, `prebuild fallback ${target_mode} clone_taget ran (init ${outcomeText(fallbackError)})`);
      assertRefusal(fallbackError, status.INVALID_ARGUMENT, { field: 'initializer.git.clone_taget' }, `prebuild fallback clone, ${target_mode}`);
    }
    // The same prebuild with a real target works.
    const ok = id('pb-ok');
    await wsd.client.initWorkspace({
      id: ok,
      metadata: meta(ok),
      initializer: { prebuild: { prebuild: { snapshot }, git: [{ remote_uri: repos.url('project'), checkout_location: 'repo', target_mode: 'REMOTE_BRANCH', clone_taget: 'dev' }] } },
    });
    assert.equal(sh(path.join(wsd.folder(ok), 'repo'), 'rev-parse', 'HEAD'), repos.dev.tip);
    await wsd.client.disposeWorkspace(ok);
  });

  it('#1 class, prebuild: commands in the restored checkout\'s .git/config (filter driver, core.sshCommand, fsmonitor) do not run', async () => {
    const marker = markerPath('prebuild-filter');
    const snapshot = await plantPrebuild((_folder, checkout) => {
      const run = `touch ${marker}; cat`;
      sh(checkout, 'config', 'filter.evil.clean', run);
      sh(checkout, 'config', 'filter.evil.smudge', run);
      sh(checkout, 'config', 'filter.evil.required', 'true');
      sh(checkout, 'config', 'core.sshCommand', `touch ${marker}; false`);
      sh(checkout, 'config', 'core.fsmonitor', `touch ${marker}; false`);
      mkdirSync(path.join(checkout, '.git', 'info'), { recursive: true });
      writeFileSync(path.join(checkout, '.git', 'info', 'attributes'), '* filter=evil\n');
      appendFileSync(path.join(checkout, 'README.md'), 'prebuild change\n'); // stash push reads it through the clean filter
    });
    assertNotCreated(marker, 'planting ran the filter already (test setup)');
    const ws = id('pb-filter');
    const outcome = await wsd.client
      .initWorkspace({
        id: ws,
        metadata: meta(ws),
        initializer: { prebuild: { prebuild: { snapshot }, git: [{ remote_uri: repos.url('project'), checkout_location: 'repo', target_mode: 'REMOTE_BRANCH', clone_taget: 'dev' }] } },
      })
      .then(() => 'initialized', (error: Error) => `refused: ${error.message}`);
    assertNotCreated(marker, `a filter/sshCommand/fsmonitor from the restored prebuild .git/config ran as the daemon (init ${outcome})`);
    // The prebuild went through its git steps (stash, fetch, checkout) in that checkout, without the planted settings.
    assert.equal(outcome, 'initialized');
    assert.equal(sh(path.join(wsd.folder(ws), 'repo'), 'rev-parse', 'HEAD'), repos.dev.tip);
    await wsd.client.disposeWorkspace(ws);
  });

  it('#1 class, prebuild: submodules of the restored checkout (their .git/modules/*/config) run nothing, also with submodule.recurse=true in the restored config', async () => {
    // A project whose submodule moves between main and dev, so that switching to dev has work to do in the submodule.
    const root = repos.root;
    const subWork = path.join(root, 'work', `sub-${n}`);
    mkdirSync(subWork, { recursive: true });
    sh(subWork, 'init', '-q', '-b', 'main');
    writeFileSync(path.join(subWork, 's.txt'), 'A\n');
    sh(subWork, 'add', '.');
    sh(subWork, 'commit', '-q', '-m', 'A');
    const subA = sh(subWork, 'rev-parse', 'HEAD');
    writeFileSync(path.join(subWork, 's.txt'), 'B\n');
    sh(subWork, 'commit', '-q', '-am', 'B');
    const subBare = path.join(root, `sub-${n}.git`);
    sh(root, 'clone', '--bare', '-q', subWork, subBare);
    const superWork = path.join(root, 'work', `super-${n}`);
    mkdirSync(superWork, { recursive: true });
    sh(superWork, 'init', '-q', '-b', 'main');
    writeFileSync(path.join(superWork, 'p.txt'), 'p\n');
    sh(superWork, 'add', '.');
    sh(superWork, 'commit', '-q', '-m', 'p');
    sh(superWork, 'submodule', 'add', '-q', `file://${subBare}`, 'sub');
    sh(path.join(superWork, 'sub'), 'checkout', '-q', subA);
    sh(superWork, 'add', 'sub');
    sh(superWork, 'commit', '-q', '-m', 'sub at A');
    sh(superWork, 'checkout', '-q', '-b', 'dev');
    sh(path.join(superWork, 'sub'), 'checkout', '-q', 'main');
    sh(superWork, 'add', 'sub');
    sh(superWork, 'commit', '-q', '-m', 'sub at B');
    sh(superWork, 'checkout', '-q', 'main');
    const superBare = path.join(root, `super-${n}.git`);
    sh(root, 'clone', '--bare', '-q', superWork, superBare);

    const marker = markerPath('prebuild-submodule');
    const ws = id('pb-src-sub');
    await wsd.client.initWorkspace({ id: ws, metadata: meta(ws), initializer: { empty: {} } });
    const checkout = path.join(wsd.folder(ws), 'repo');
    sh(wsd.folder(ws), 'clone', '-q', `file://${superBare}`, checkout);
    sh(checkout, 'submodule', 'update', '-q', '--init');
    const subGit = path.join(checkout, '.git', 'modules', 'sub');
    // The submodule's own config: a smudge/clean filter (checkout) and an upload-pack command (fetch, file://).
    sh(checkout, '--git-dir', subGit, 'config', 'filter.evil.smudge', `touch ${marker}; cat`);
    sh(checkout, '--git-dir', subGit, 'config', 'filter.evil.clean', `touch ${marker}; cat`);
    sh(checkout, '--git-dir', subGit, 'config', 'remote.origin.uploadpack', `touch ${marker}; git-upload-pack`);
    mkdirSync(path.join(subGit, 'info'), { recursive: true });
    writeFileSync(path.join(subGit, 'info', 'attributes'), '* filter=evil\n');
    // `submodule.recurse` is on the list of safe settings, so the sanitizing keeps it in the top config.
    sh(checkout, 'config', 'submodule.recurse', 'true');
    assertNotCreated(marker, 'planting ran the filter already (test setup)');
    const snapshot = await wsd.client.takeSnapshot(ws);
    await wsd.client.disposeWorkspace(ws);

    const pb = id('pb-sub');
    const outcome = await settle(
      wsd.client.initWorkspace({
        id: pb,
        metadata: meta(pb),
        initializer: { prebuild: { prebuild: { snapshot }, git: [{ remote_uri: `file://${superBare}`, checkout_location: 'repo', target_mode: 'REMOTE_BRANCH', clone_taget: 'dev' }] } },
      }),
    );
    assertNotCreated(
      marker,
      `git in a submodule of the restored prebuild ran a command from .git/modules/sub/config — the sanitizing keeps submodule.recurse=true, so the prebuild's git fetch recursed into the submodule and ran its remote.origin.uploadpack (init ${outcomeText(outcome)})`,
    );
    await wsd.client.disposeWorkspace(pb).catch(() => undefined);
  });

  it('#1 class, prebuild: a restored .git/commondir pointing at another git folder (whose config has a filter driver) is no way around the config sanitizing', async () => {
    const marker = markerPath('prebuild-commondir');
    const snapshot = await plantPrebuild((folder, checkout) => {
      // Git reads config (and info/attributes) from $GIT_DIR/commondir when the file exists: a second, unsanitized config.
      const shadow = path.join(folder, 'shadow-git');
      cpSync(path.join(checkout, '.git'), shadow, { recursive: true });
      sh(shadow, '--git-dir', shadow, 'config', 'filter.evil.clean', `touch ${marker}; cat`);
      sh(shadow, '--git-dir', shadow, 'config', 'filter.evil.smudge', `touch ${marker}; cat`);
      mkdirSync(path.join(shadow, 'info'), { recursive: true });
      writeFileSync(path.join(shadow, 'info', 'attributes'), '* filter=evil\n');
      writeFileSync(path.join(checkout, '.git', 'commondir'), '../../shadow-git\n');
      appendFileSync(path.join(checkout, 'README.md'), 'prebuild change\n');
    });
    assertNotCreated(marker, 'planting ran the filter already (test setup)');
    const ws = id('pb-commondir');
    const outcome = await wsd.client
      .initWorkspace({
        id: ws,
        metadata: meta(ws),
        initializer: { prebuild: { prebuild: { snapshot }, git: [{ remote_uri: repos.url('project'), checkout_location: 'repo', target_mode: 'REMOTE_BRANCH', clone_taget: 'dev' }] } },
      })
      .then(() => 'initialized', (error: Error) => `refused: ${error.message}`);
    assertNotCreated(marker, `a filter from the config behind the restored .git/commondir ran as the daemon during the prebuild (init ${outcome})`);
    await wsd.client.disposeWorkspace(ws).catch(() => undefined);
  });
});
