import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WsdClient } from '../../core/api/client.js';
import { startDaemonProcess, testDaemonConfig, type DaemonProcess } from '../kit/daemon-process.js';
import { makeRepos, sh, type TestRepos } from '../kit/git-fixtures.js';
import { tempDir } from '../kit/temp-dir.js';

/** What git itself says, parsed the straightforward way, to compare wsd's report against. */
function porcelain(repo: string) {
  const lines = sh(repo, '-c', 'core.quotePath=false', 'status', '--porcelain=v2', '--branch', '-uall').split('\n');
  const changed = lines.filter((l) => /^[12u] /.test(l)).map((l) => (l.startsWith('2 ') ? l.split('\t')[0]!.split(' ').slice(9).join(' ') : l.split(' ').slice(l.startsWith('u ') ? 10 : 8).join(' ')));
  const untracked = lines.filter((l) => l.startsWith('? ')).map((l) => l.slice(2));
  const branch = lines.find((l) => l.startsWith('# branch.head '))!.slice('# branch.head '.length);
  const unpushed = sh(repo, 'log', '--pretty=%h: %s', '--branches', '--not', '--remotes').split('\n').filter(Boolean);
  return { branch, changed, untracked, unpushed, head: sh(repo, 'rev-parse', 'HEAD') };
}

describe('git status on dispose', () => {
  let repos: TestRepos;
  let daemon: DaemonProcess;
  let client: WsdClient;
  let dir: string;
  before(async () => {
    repos = makeRepos(tempDir('wsd-status-repos-'));
    dir = tempDir('wsd-status-');
    daemon = await startDaemonProcess({ args: ['--config', testDaemonConfig(dir)] });
    client = new WsdClient({ address: daemon.grpcAddress });
  });
  after(async () => {
    client?.close();
    assert.equal(await daemon?.stop(), 0);
  });

  it('reports branch, latest commit, uncommitted, untracked and unpushed as git does, lists capped at 100', async () => {
    await client.initWorkspace({
      id: 'gs-1',
      metadata: { owner: 'fay', meta_id: 'gs' },
      initializer: { composite: { initializer: [{ empty: {} }, { git: { remote_uri: repos.url('project'), checkout_location: 'repo', target_mode: 'LOCAL_BRANCH', clone_taget: 'topic' } }] } },
    });
    const repo = path.join(dir, 'data', 'workspaces', 'gs-1', 'repo');
    for (let i = 0; i < 3; i++) {
      writeFileSync(path.join(repo, `commit-${i}.txt`), `${i}\n`);
      sh(repo, 'add', '.');
      sh(repo, 'commit', '-q', '-m', `local ${i}`);
    }
    writeFileSync(path.join(repo, 'README.md'), 'modified\n');
    writeFileSync(path.join(repo, 'staged.txt'), 'staged\n');
    sh(repo, 'add', 'staged.txt');
    sh(repo, 'mv', 'commit-0.txt', 'renamed.txt');
    mkdirSync(path.join(repo, 'untracked'));
    for (let i = 0; i < 130; i++) writeFileSync(path.join(repo, 'untracked', `file ${i}.txt`), 'x');
    const expected = porcelain(repo);

    const described = (await client.describeWorkspace('gs-1')).git_status!;
    const status = (await client.disposeWorkspace('gs-1'))!;
    for (const s of [described, status]) {
      assert.equal(s.branch, 'topic');
      assert.equal(s.branch, expected.branch);
      assert.equal(s.latest_commit, expected.head);
      assert.deepEqual(s.uncommited_files, expected.changed);
      assert.equal(s.total_uncommited_files, 3);
      assert.equal(s.untracked_files.length, 100);
      assert.deepEqual(s.untracked_files, expected.untracked.slice(0, 100));
      assert.equal(s.total_untracked_files, 130);
      assert.deepEqual(s.unpushed_commits, expected.unpushed);
      assert.equal(s.total_unpushed_commits, 3);
    }
  });

  it('gives an empty status for a folder that is not a repository', async () => {
    await client.initWorkspace({ id: 'gs-2', metadata: { owner: 'fay', meta_id: 'gs2' }, initializer: { empty: {} } });
    const status = await client.disposeWorkspace('gs-2');
    assert.equal(status?.branch, '');
    assert.equal(status?.total_untracked_files, 0);
  });
});
