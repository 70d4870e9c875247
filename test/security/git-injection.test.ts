/**
 * Probe findings #1 (git config → command execution) and #2 (argument injection through refs), reproduced through
 * the daemon's gRPC API. Every request carries a command that would `touch` a marker file in /tmp. The marker is
 * checked first (did the hole open?), then the answer: INVALID_ARGUMENT naming the field.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { InitWorkspaceRequest } from '../../core/api/client.js';
import { makeRepos, type TestRepos } from '../kit/git-fixtures.js';
import { assertNotCreated, assertRefusal, markerPath, meta, outcomeText, removeMarkers, settle, startTestDaemon, type TestDaemon } from '../kit/security-fixtures.js';
import { tempDir } from '../kit/temp-dir.js';

describe('security: git initializer command execution (#1) and argument injection (#2)', () => {
  let repos: TestRepos;
  let wsd: TestDaemon;
  let n = 0;
  const id = (label: string) => `${label}-${++n}`;

  /** Runs a git init that must be refused: no marker first, then INVALID_ARGUMENT naming `field`. */
  async function refused(git: NonNullable<InitWorkspaceRequest['initializer']>['git'], field: string, marker: string, what: string): Promise<void> {
    const ws = id('git');
    const error = await settle(wsd.client.initWorkspace({ id: ws, metadata: meta(ws), initializer: { git } }));
    if (!error) await wsd.client.disposeWorkspace(ws).catch(() => undefined);
    assertNotCreated(marker, `${what} (init ${outcomeText(error)})`);
    assertRefusal(error, status.INVALID_ARGUMENT, { field }, what);
    assert.equal(existsSync(wsd.folder(ws)), false, `${what}: no folder is left`);
  }

  before(async () => {
    repos = makeRepos(tempDir('wsd-sec-inject-repos-'));
    // Everything the fixtures need is allowed (ssh too, so that #1's ssh case is refused for its config key, not
    // for its transport).
    wsd = await startTestDaemon(tempDir('wsd-sec-inject-'), { git: { protocols: ['https', 'ssh', 'http', 'file'], localRoots: [repos.root], allowedNetworks: ['127.0.0.1/32'] } });
  });
  after(async () => {
    await wsd?.stop();
    removeMarkers();
  });

  it('#1 git config → command execution: ext:: remote with protocol.ext.allow=always is refused (INVALID_ARGUMENT initializer.git.remote_uri), nothing runs', async () => {
    const marker = markerPath('ext');
    for (const remote_uri of [`ext::sh -c touch% ${marker}`, `ext::sh -c "touch ${marker}"`, `EXT::sh -c touch% ${marker}`]) {
      await refused({ remote_uri, config: { custom_config: { 'protocol.ext.allow': 'always' } } }, 'initializer.git.remote_uri', marker, `ext:: transport ${remote_uri}`);
    }
  });

  it('#1 git config → command execution: core.sshCommand with an ssh:// remote is refused (INVALID_ARGUMENT naming the custom_config key), nothing runs', async () => {
    const marker = markerPath('sshcommand');
    for (const key of ['core.sshCommand', 'Core.SSHCommand']) {
      // No port in the URL: git refuses a port for an unknown ssh variant before it would run the command.
      await refused(
        { remote_uri: 'ssh://git@127.0.0.1/repo.git', config: { custom_config: { [key]: `touch ${marker}; false` } } },
        `initializer.git.config.custom_config[${JSON.stringify(key)}]`,
        marker,
        `custom_config ${key}`,
      );
    }
  });

  it('#1 git config → command execution: an ext:: upstream_Remote_uri (with protocol.ext.allow) is refused (INVALID_ARGUMENT initializer.git.upstream_Remote_uri)', async () => {
    const marker = markerPath('upstream-ext');
    await refused(
      { remote_uri: repos.url('project'), upstream_Remote_uri: `ext::sh -c touch% ${marker}`, config: { custom_config: { 'protocol.ext.allow': 'always' } } },
      'initializer.git.upstream_Remote_uri',
      marker,
      'ext:: upstream',
    );
  });

  it('#1 git config → command execution: custom_config keys that run commands, load files or redirect fetches are refused by name', async () => {
    const marker = markerPath('config-keys');
    const script = `touch ${marker}`;
    const keys: Record<string, string> = {
      'core.fsmonitor': script,
      'core.hooksPath': marker,
      'core.pager': script,
      'core.editor': script,
      'core.askPass': script,
      'core.gitProxy': script,
      'core.worktree': marker, // a checkout would land outside the workspace
      'filter.lfs.smudge': script,
      'filter.x.process': script,
      'credential.helper': `!${script}`,
      'include.path': marker,
      'url.ext::sh -c touch% x #.insteadOf': repos.url('project'),
      'url.file:///etc/.insteadOf': 'file:///',
      'uploadpack.packObjectsHook': script,
      'remote.origin.uploadpack': script,
      'protocol.allow': 'always',
      'protocol.file.allow': 'always',
      'diff.external': script,
      'gpg.program': script,
      'alias.clone': `!${script}`,
      'http.proxy': 'http://127.0.0.1:9',
      'http.extraHeader': 'Authorization: Bearer x',
      'sequence.editor': script,
      'safe.directory': '*',
      'submodule.lib.update': `!${script}`,
    };
    for (const [key, value] of Object.entries(keys)) {
      await refused({ remote_uri: repos.url('project'), config: { custom_config: { [key]: value } } }, `initializer.git.config.custom_config[${JSON.stringify(key)}]`, marker, `custom_config ${key}`);
    }
    // A value cannot smuggle a second setting in on a new line.
    await refused(
      { remote_uri: repos.url('project'), config: { custom_config: { 'core.autocrlf': `false\n[core]\n\tsshCommand = ${script}` } } },
      'initializer.git.config.custom_config["core.autocrlf"]',
      marker,
      'a newline in a custom_config value',
    );
    // A safe key still works.
    const ok = id('key-ok');
    await wsd.client.initWorkspace({ id: ok, metadata: meta(ok), initializer: { git: { remote_uri: repos.url('project'), config: { custom_config: { 'core.autocrlf': 'input' } } } } });
    await wsd.client.disposeWorkspace(ok);
  });

  it('#2 argument injection: REMOTE_COMMIT clone_taget "--upload-pack=touch …;git-upload-pack" against a file:// repo is refused (INVALID_ARGUMENT initializer.git.clone_taget), nothing runs', async () => {
    const marker = markerPath('upload-pack');
    for (const full_clone of [false, true]) {
      await refused(
        { remote_uri: repos.url('project'), target_mode: 'REMOTE_COMMIT', clone_taget: `--upload-pack=touch ${marker};git-upload-pack`, full_clone },
        'initializer.git.clone_taget',
        marker,
        `--upload-pack as REMOTE_COMMIT clone_taget (full_clone ${full_clone})`,
      );
    }
  });

  it('#2 argument injection: branch targets (REMOTE_BRANCH, LOCAL_BRANCH) and commit targets must be refs, never options', async () => {
    const marker = markerPath('branch-inject');
    const cases: Array<['REMOTE_BRANCH' | 'LOCAL_BRANCH' | 'REMOTE_COMMIT', string]> = [
      ['REMOTE_BRANCH', `--upload-pack=touch ${marker};git-upload-pack`],
      ['REMOTE_BRANCH', '-b'],
      ['REMOTE_BRANCH', 'a..b'],
      ['REMOTE_BRANCH', 'dev\nmain'],
      ['LOCAL_BRANCH', `--upload-pack=touch ${marker}`],
      ['LOCAL_BRANCH', '-f'],
      ['LOCAL_BRANCH', '--orphan=x'],
      ['LOCAL_BRANCH', 'x@{1}'],
      ['REMOTE_COMMIT', 'HEAD~1'],
      ['REMOTE_COMMIT', '-q'],
      ['REMOTE_COMMIT', ''],
    ];
    for (const [target_mode, clone_taget] of cases) {
      await refused({ remote_uri: repos.url('project'), target_mode, clone_taget }, 'initializer.git.clone_taget', marker, `${target_mode} ${JSON.stringify(clone_taget)}`);
    }
    // Real refs still work.
    for (const [target_mode, clone_taget] of [['REMOTE_COMMIT', repos.main.firstCommit], ['REMOTE_BRANCH', 'dev'], ['LOCAL_BRANCH', 'feature/x']] as const) {
      const ws = id('ref-ok');
      await wsd.client.initWorkspace({ id: ws, metadata: meta(ws), initializer: { git: { remote_uri: repos.url('project'), target_mode, clone_taget } } });
      await wsd.client.disposeWorkspace(ws);
    }
  });
});
