import assert from 'node:assert/strict';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runWsd, runWsdInTerminal, startDaemonProcess, testDaemonConfig, type DaemonProcess } from '../kit/daemon-process.js';
import { makeRepos, sh } from '../kit/git-fixtures.js';
import { until } from '../kit/polling.js';
import { tempDir } from '../kit/temp-dir.js';

describe('wsd client', () => {
  let dir: string;
  let daemon: DaemonProcess;
  const wsd = (...args: string[]) => runWsd(['client', '--address', daemon.grpcAddress, ...args]);

  before(async () => {
    dir = tempDir('wsd-client-');
    daemon = await startDaemonProcess({ args: ['--config', testDaemonConfig(dir)] });
  });
  after(async () => {
    assert.equal(await daemon?.stop(), 0);
  });

  it('drives a workspace through its life with shorthands, human output by default and JSON on request', async () => {
    let r = await wsd('init', 'cli-1', '--owner', 'dave', '--meta-id', 'cm', '--empty');
    assert.deepEqual([r.code, r.stdout], [0, 'workspace cli-1 is ready\n']);
    writeFileSync(path.join(dir, 'data', 'workspaces', 'cli-1', 'a.txt'), 'a\n');
    r = await wsd('exists', 'cli-1');
    assert.equal(r.stdout, 'workspace cli-1 exists\n');
    r = await wsd('--json', 'exists', 'cli-1');
    assert.deepEqual(JSON.parse(r.stdout), { id: 'cli-1', exists: true });
    r = await wsd('wait', 'cli-1');
    assert.equal(r.code, 0);
    r = await wsd('backup', 'cli-1');
    assert.match(r.stdout, /^dave\/workspaces\/cm\/backups\/.+\.(?:tar|tree)\.zst\n$/);
    const snapshot = (await wsd('snapshot', 'cli-1')).stdout.trim();
    assert.match(snapshot, /^dave\/workspaces\/cm\/snapshots\//);
    r = await wsd('list');
    assert.match(r.stdout, /^ID +STATE +OWNER +META ID +CREATED\ncli-1 +ready +dave +cm +\d{4}-/);
    r = await wsd('describe', 'cli-1');
    assert.match(r.stdout, /^state: +ready$/m);
    assert.match(r.stdout, /^snapshot: +dave\/workspaces\/cm\/snapshots\/\S+ done$/m);
    const detail = JSON.parse((await wsd('--json', 'describe', 'cli-1')).stdout);
    assert.equal(detail.summary.id, 'cli-1');
    r = await wsd('dispose', 'cli-1', '--backup');
    assert.deepEqual([r.code, r.stdout], [0, 'workspace cli-1 disposed\n']);

    r = await wsd('init', 'cli-2', '--owner', 'dave', '--meta-id', 'cm', '--snapshot', snapshot);
    assert.equal(r.code, 0, r.stderr);
    r = await wsd('init', 'cli-3', '--owner', 'dave', '--meta-id', 'cm', '--backup');
    assert.equal(r.code, 0, r.stderr);
    await wsd('dispose', 'cli-2');
    await wsd('dispose', 'cli-3');
  });

  it('takes the initializer as a JSON or YAML file in the proto JSON mapping', async () => {
    const json = path.join(dir, 'init.json');
    writeFileSync(json, JSON.stringify({ composite: { initializer: [{ empty: {} }] } }));
    let r = await wsd('init', 'cli-json', '--owner', 'dave', '--meta-id', 'cj', '--initializer', json);
    assert.equal(r.code, 0, r.stderr);
    const yaml = path.join(dir, 'init.yaml');
    writeFileSync(yaml, 'composite:\n  initializer:\n    - empty: {}\n');
    r = await wsd('init', 'cli-yaml', '--owner', 'dave', '--meta-id', 'cj', '-f', yaml);
    assert.equal(r.code, 0, r.stderr);

    writeFileSync(json, JSON.stringify({ git: { remoteUri: 'file:///x', targetMode: 'SIDEWAYS' } }));
    r = await wsd('init', 'cli-bad', '--owner', 'dave', '--meta-id', 'cj', '-f', json);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /git\.targetMode: expected one of REMOTE_HEAD, REMOTE_COMMIT, REMOTE_BRANCH, LOCAL_BRANCH/);
  });

  it('takes the client flags before or after the subcommand, and shows them in every command\'s help', async () => {
    const after = (...args: string[]) => runWsd(['client', ...args]);
    let r = await after('init', 'cli-flags', '--owner', 'dave', '--meta-id', 'cf', '--empty', '--address', daemon.grpcAddress, '--timeout', '30');
    assert.equal(r.code, 0, r.stderr);
    r = await after('exists', 'cli-flags', '--json', '-a', daemon.grpcAddress);
    assert.deepEqual([r.code, JSON.parse(r.stdout)], [0, { id: 'cli-flags', exists: true }]);
    r = await runWsd(['client', '--json', 'exists', 'cli-flags', '--address', daemon.grpcAddress]);
    assert.deepEqual(JSON.parse(r.stdout), { id: 'cli-flags', exists: true });
    r = await runWsd(['client', 'exists', 'cli-flags'], { env: { WSD_ADDRESS: daemon.grpcAddress } });
    assert.deepEqual([r.code, r.stdout], [0, 'workspace cli-flags exists\n']);
    // A flag after the subcommand wins over the same flag before it.
    r = await runWsd(['client', '--address', '127.0.0.1:1', 'exists', 'cli-flags', '--address', daemon.grpcAddress]);
    assert.equal(r.code, 0, r.stderr);
    for (const command of ['init', 'wait', 'exists', 'snapshot', 'backup', 'dispose', 'list', 'describe']) {
      const help = await after(command, '--help');
      assert.equal(help.code, 0);
      for (const flag of ['--address', '--tls-ca', '--tls-cert', '--tls-key', '--tls-server-name', '--timeout', '--json']) {
        assert.ok(help.stdout.includes(flag), `wsd client ${command} --help lists ${flag}:\n${help.stdout}`);
      }
    }
    await wsd('dispose', 'cli-flags');
  });

  it('exits 2 on every usage error, with the reason on stderr', async () => {
    const usage = async (args: string[], reason: RegExp) => {
      const r = await runWsd(args);
      assert.equal(r.code, 2, `wsd ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, reason, `wsd ${args.join(' ')}`);
      assert.equal(r.stdout, '');
    };
    await usage(['client', 'exists', 'x', '--nope'], /unknown option '--nope'/);
    await usage(['client', '--nope', 'exists', 'x'], /unknown option '--nope'/);
    await usage(['client', 'init', 'x', '--empty'], /required option '--owner <owner>' not specified/);
    await usage(['client', 'nosuch'], /unknown command 'nosuch'/);
    await usage(['client'], /Usage: wsd client/);
    await usage(['nosuch'], /unknown command 'nosuch'/);
    await usage(['client', 'exists'], /missing required argument 'id'/);
    await usage(['client', '--timeout', 'abc', 'exists', 'x'], /option '--timeout <duration>' argument 'abc' is invalid\. "abc" is not a duration/);
    await usage(['client', 'exists', 'x', '--timeout', '0'], /option '--timeout <duration>' argument '0' is invalid/);
    await usage(['client', 'exists', 'x', '--timeout', '-5'], /--timeout/);
    await usage(['client', 'init', 'x', '--owner', 'o', '--meta-id', 'm', '--empty', '--quota', 'lots'], /option '--quota <size>' argument 'lots' is invalid\. "lots" is not a size/);
    await usage(['client', 'exists', 'x', '--tls-ca', path.join(dir, 'no-such-ca.crt')], /--tls-ca .*no-such-ca\.crt: file not found/);
    // Durations and sizes in the config's notation are accepted.
    let r = await runWsd(['client', 'exists', 'x', '--timeout', '1m30s', '--address', daemon.grpcAddress]);
    assert.equal(r.code, 0, r.stderr);
    r = await runWsd(['client', 'exists', 'x', '--timeout', '2.5', '--address', daemon.grpcAddress]);
    assert.equal(r.code, 0, r.stderr);
    r = await runWsd(['client', '--help']);
    assert.equal(r.code, 0);
  });

  it('exits 1 with the gRPC status name on errors, and 2 on bad usage', async () => {
    let r = await wsd('wait', 'nope');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^NOT_FOUND: workspace nope does not exist/);
    r = await wsd('init', 'cli-x', '--owner', 'dave', '--meta-id', 'cx', '--empty', '--backup');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /exactly one of --empty, --git, --snapshot, --backup, --initializer/);
    r = await wsd('init', 'cli-x', '--owner', 'dave', '--meta-id', 'cx', '--backup');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^NOT_FOUND: /);
  });

  it('logs the caller\'s mistakes at warn with their code, never at error', async () => {
    const mistakes: Array<[string[], string]> = [
      [['wait', 'no-such-ws'], 'NOT_FOUND'],
      [['init', 'cli-m1', '--owner', 'dave', '--meta-id', 'never-backed-up', '--backup'], 'NOT_FOUND'],
      [['init', 'cli-m2', '--owner', 'dave', '--meta-id', 'cm2', '--git', 'ext::sh -c id'], 'INVALID_ARGUMENT'],
      [['init', 'bad/id', '--owner', 'dave', '--meta-id', 'cm2', '--empty'], 'INVALID_ARGUMENT'],
      [['backup', 'no-such-ws'], 'NOT_FOUND'],
    ];
    const seen = daemon.logs.length;
    for (const [args, code] of mistakes) {
      const r = await wsd(...args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^${code}: `), args.join(' '));
    }
    // The two failed inits are logged (with their code); the rest are plain answers to the caller.
    await until(() => daemon.logs.slice(seen).filter((l) => l.msg === 'init failed').length === 2, 'both init failures logged');
    const logged = daemon.logs.slice(seen);
    assert.deepEqual(logged.filter((l) => l.level === 'error'), []);
    assert.deepEqual(logged.filter((l) => l.msg === 'init failed').map((l) => [l.level, (l.error as { code: string }).code]), [['warn', 'NOT_FOUND'], ['warn', 'INVALID_ARGUMENT']]);
    await wsd('dispose', 'cli-m1');
    await wsd('dispose', 'cli-m2');
  });

  /** Every key of a `--json` answer, at any depth, is lowerCamel (the proto JSON mapping): none has an underscore. */
  const assertCamelCase = (value: unknown, at = '$'): void => {
    if (Array.isArray(value)) value.forEach((v, i) => assertCamelCase(v, `${at}[${i}]`));
    else if (value && typeof value === 'object') {
      for (const [key, v] of Object.entries(value)) {
        assert.match(key, /^[a-z][A-Za-z0-9]*$/, `${at}.${key}`);
        assertCamelCase(v, `${at}.${key}`);
      }
    }
  };

  it('says what did not go as asked, shows git status (without the ready marker), prints JSON in the proto mapping, and guards uncommitted work', async () => {
    const repos = makeRepos(tempDir('wsd-cli-repos-'));
    let r = await wsd('init', 'cli-git', '--owner', 'dave', '--meta-id', 'cg', '--git', repos.url('project'), '--branch', 'nosuch');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'workspace cli-git is ready\n');
    assert.match(r.stderr, /^warning: branch "nosuch" does not exist in file:\/\/\S+project\.git: cloned the default branch instead$/m);
    const folder = path.join(dir, 'data', 'workspaces', 'cli-git');
    assert.ok(existsSync(path.join(folder, '.gitpod', 'ready')));
    assert.equal(sh(folder, 'status', '--porcelain', '--untracked-files=all'), '', 'the ready marker is not untracked work');

    appendFileSync(path.join(folder, 'README.md'), 'changed\n');
    writeFileSync(path.join(folder, 'new.txt'), 'new\n');
    r = await wsd('describe', 'cli-git');
    assert.match(r.stdout, /^warning: +branch "nosuch" does not exist/m);
    assert.match(r.stdout, /^git branch: +main$/m);
    assert.match(r.stdout, new RegExp(`^git commit: +${repos.main.tip}$`, 'm'));
    assert.match(r.stdout, /^uncommitted: +1: README\.md$/m);
    assert.match(r.stdout, /^untracked: +1: new\.txt$/m);
    assert.match(r.stdout, /^unpushed: +none$/m);

    const detail = JSON.parse((await wsd('describe', 'cli-git', '--json')).stdout);
    assertCamelCase(detail);
    assert.equal(detail.summary.metaId, 'cg');
    assert.equal(detail.summary.state, 'WORKSPACE_STATE_READY');
    assert.deepEqual(detail.gitStatus.untrackedFiles, ['new.txt']);
    assert.equal(detail.gitStatus.totalUncommitedFiles, '1', 'int64 as a decimal string, as the mapping says');
    assert.match(detail.warnings[0], /branch "nosuch"/);
    const list = JSON.parse((await wsd('list', '--json')).stdout);
    assertCamelCase(list);
    assert.ok(list.workspaces.some((w: { id: string; metaId: string }) => w.id === 'cli-git' && w.metaId === 'cg'));

    // Not a terminal here: a dispose that would lose work is refused, naming the work and the flags that decide.
    r = await wsd('dispose', 'cli-git');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^wsd client: workspace cli-git has work that disposing it would throw away on branch main: 1 uncommitted file \(README\.md\), 1 untracked file \(new\.txt\).*Not disposed: pass --backup to keep it in a final backup, or --force to dispose anyway\.$/m);
    assert.equal((await wsd('exists', 'cli-git')).stdout, 'workspace cli-git exists\n');
    r = await wsd('dispose', 'cli-git', '--backup', '--json');
    assert.equal(r.code, 0, r.stderr);
    const disposed = JSON.parse(r.stdout);
    assertCamelCase(disposed);
    assert.deepEqual([disposed.disposed, disposed.gitStatus.branch, disposed.gitStatus.uncommitedFiles], [true, 'main', ['README.md']]);

    // `init --empty` of a workspace that has a backup restores it: said so, in text and in JSON.
    r = await wsd('init', 'cli-git2', '--owner', 'dave', '--meta-id', 'cg', '--empty');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^warning: workspace cg \(owner dave\) has a backup: restored dave\/workspaces\/cg\/backups\/\S+ \(taken [^)]+\) instead of running the empty initializer \(workspaces\.backupWins\)$/m);
    await wsd('dispose', 'cli-git2', '--force');
    r = await wsd('init', 'cli-git3', '--owner', 'dave', '--meta-id', 'cg', '--empty', '--json');
    const result = JSON.parse(r.stdout);
    assertCamelCase(result);
    assert.equal(result.contentSource, 'from-backup');
    assert.match(result.restoredFrom, /^dave\/workspaces\/cg\/backups\//);
    assert.equal(result.warnings.length, 1);
    const restored = path.join(dir, 'data', 'workspaces', 'cli-git3');
    assert.deepEqual(sh(restored, 'status', '--porcelain', '--untracked-files=all').split('\n').map((l) => l.trim()).sort(), ['?? new.txt', 'M README.md'], 'the restored exclude keeps the marker out');
    r = await wsd('dispose', 'cli-git3', '--force');
    assert.equal(r.code, 0, r.stderr);
  });

  it('on a terminal: asks before throwing work away, and shows progress on one line', async () => {
    const repos = makeRepos(tempDir('wsd-cli-tty-repos-'));
    assert.equal((await wsd('init', 'cli-tty', '--owner', 'dave', '--meta-id', 'ct', '--git', repos.url('project'))).code, 0);
    writeFileSync(path.join(dir, 'data', 'workspaces', 'cli-tty', 'draft.txt'), 'draft\n');
    const terminal = (input: string, ...args: string[]) => runWsdInTerminal(['client', ...args, '--address', daemon.grpcAddress], { input });

    let r = await terminal('n\n', 'dispose', 'cli-tty');
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, /workspace cli-tty has work that disposing it would throw away on branch main: 1 untracked file \(draft\.txt\)/);
    assert.match(r.output, /Dispose it anyway and lose this work\? \[y\/N\]/);
    assert.match(r.output, /workspace cli-tty not disposed/);
    assert.equal((await wsd('exists', 'cli-tty')).stdout, 'workspace cli-tty exists\n');

    r = await terminal('', 'backup', 'cli-tty');
    assert.equal(r.code, 0, r.output);
    // The progress line is rewritten in place (carriage return, erase line) and ends as one summary line.
    assert.match(r.output, /\r\x1b\[Kbackup: done, [\d.]+ (B|KiB|MiB), \d+ files in [\d.]+s(, [\d.]+ (B|KiB|MiB)\/s)?\r?\n/);
    assert.match(r.output, /dave\/workspaces\/ct\/backups\/\S+\.(?:tar|tree)\.zst/);

    r = await terminal('y\n', 'dispose', 'cli-tty');
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /workspace cli-tty disposed \(branch main\)/);
  });

  it('elsewhere shows progress as plain lines on stderr, and none with --no-progress', async () => {
    assert.equal((await wsd('init', 'cli-prog', '--owner', 'dave', '--meta-id', 'cp', '--empty')).code, 0);
    let r = await wsd('backup', 'cli-prog');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^dave\/workspaces\/cp\/backups\/\S+\.(?:tar|tree)\.zst\n$/);
    assert.match(r.stderr, /^backup: done, [\d.]+ (B|KiB), \d+ files in [\d.]+s/m);
    assert.doesNotMatch(r.stderr, /\r|\x1b/, 'no terminal control characters in a log');
    r = await wsd('backup', 'cli-prog', '--no-progress');
    assert.equal(r.stderr, '');
    await wsd('dispose', 'cli-prog');
  });
});
