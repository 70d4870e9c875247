import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WsdError } from '../../../core/errors.js';
import { AddressPolicy } from '../../../core/net/address-policy.js';
import { gitTestPolicy, makeRepos, sh, startGitHttpServer, type GitHttpServer, type TestRepos } from '../../../test/kit/git-fixtures.js';
import { initializerRun } from '../../../test/kit/initializer-options.js';
import { tempDir } from '../../../test/kit/temp-dir.js';
import { GitContentInitializer, type GitSpec } from './git-content-initializer.js';
import { OneTimeSecrets } from './one-time-secret.js';

const initializer = (options: { allowFileSubmodules?: boolean; policy?: typeof gitTestPolicy } = { allowFileSubmodules: true }) =>
  new GitContentInitializer({ retryTimeoutMs: 10_000, initialRetryDelayMs: 100, secrets: new OneTimeSecrets({ attempts: 3, delayMs: 50, networks: new AddressPolicy({ allowed: ['127.0.0.1/32'] }) }), policy: gitTestPolicy, ...options });

async function clone(spec: GitSpec, git = initializer()) {
  const run = initializerRun(spec);
  const result = await git.initialize(run.options);
  return { ...run, result, repo: (...args: string[]) => sh(path.join(run.dir, spec.checkout_location ?? ''), ...args) };
}

describe('initializer/git', () => {
  let repos: TestRepos;
  let http: GitHttpServer;
  let secured: GitHttpServer;

  before(async () => {
    repos = makeRepos(tempDir('wsd-repos-'));
    http = await startGitHttpServer(repos.root);
    secured = await startGitHttpServer(repos.root, { user: 'alice', password: 's3cret-pa55' });
  });
  after(async () => {
    await http?.close();
    await secured?.close();
  });

  it('clones the default branch shallowly with REMOTE_HEAD, submodules included', async () => {
    const { repo, result, dir } = await clone({ remote_uri: repos.url('project') });
    assert.equal(repo('rev-parse', 'HEAD'), repos.main.tip);
    assert.equal(repo('rev-parse', '--abbrev-ref', 'HEAD'), 'main');
    assert.equal(repo('rev-parse', '--is-shallow-repository'), 'true');
    assert.equal(readFileSync(path.join(dir, 'lib', 'lib.txt'), 'utf8'), 'library\n');
    assert.equal(result.source, 'from-other');
    assert.equal(result.stats[0]!.kind, 'git');
    assert.ok(result.stats[0]!.bytes! > 0);
  });

  it('clones the full history with full_clone, into a checkout location', async () => {
    const { repo } = await clone({ remote_uri: repos.url('project'), full_clone: true, checkout_location: 'src/project' });
    assert.equal(repo('rev-parse', '--is-shallow-repository'), 'false');
    assert.equal(repo('rev-list', '--count', 'HEAD'), '3');
  });

  it('checks out a branch with REMOTE_BRANCH, and falls back to the default branch when it is missing', async () => {
    const dev = await clone({ remote_uri: repos.url('project'), target_mode: 'REMOTE_BRANCH', clone_taget: 'dev' });
    assert.equal(dev.repo('rev-parse', 'HEAD'), repos.dev.tip);
    assert.equal(dev.repo('rev-parse', '--abbrev-ref', 'HEAD'), 'dev');
    const missing = await clone({ remote_uri: repos.url('project'), target_mode: 'REMOTE_BRANCH', clone_taget: 'no-such-branch' });
    assert.equal(missing.repo('rev-parse', 'HEAD'), repos.main.tip);
    assert.ok(missing.logs.some((l) => /branch not found on the remote/.test(l) && /"level":"warn"/.test(l)));
  });

  it('checks out an older commit with REMOTE_COMMIT, shallow or full', async () => {
    for (const full_clone of [false, true]) {
      const { repo } = await clone({ remote_uri: repos.url('project'), target_mode: 'REMOTE_COMMIT', clone_taget: repos.main.firstCommit, full_clone });
      assert.equal(repo('rev-parse', 'HEAD'), repos.main.firstCommit);
      assert.equal(readFileSync(path.join(repo('rev-parse', '--show-toplevel'), 'README.md'), 'utf8'), 'one\n');
    }
    await assert.rejects(
      clone({ remote_uri: repos.url('project'), target_mode: 'REMOTE_COMMIT', clone_taget: 'f'.repeat(40) }),
      (e: WsdError) => e.code === 'FAILED_PRECONDITION' && /not found/.test(e.message),
    );
  });

  it('creates a new branch off the default branch with LOCAL_BRANCH', async () => {
    const { repo } = await clone({ remote_uri: repos.url('project'), target_mode: 'LOCAL_BRANCH', clone_taget: 'my-feature' });
    assert.equal(repo('rev-parse', '--abbrev-ref', 'HEAD'), 'my-feature');
    assert.equal(repo('rev-parse', 'HEAD'), repos.main.tip);
  });

  it('applies custom config (safe keys and an operator\'s extra keys) and adds and fetches the upstream remote', async () => {
    const { repo } = await clone({
      remote_uri: repos.url('project'),
      upstream_Remote_uri: repos.url('upstream'),
      config: { custom_config: { 'core.autocrlf': 'input', 'wsd.test': 'yes' } },
    }, initializer({ allowFileSubmodules: true, policy: { ...gitTestPolicy, extraConfigKeys: ['wsd.test'] } }));
    assert.equal(repo('config', '--get', 'wsd.test'), 'yes');
    assert.equal(repo('config', '--get', 'core.autocrlf'), 'input');
    assert.equal(repo('remote', 'get-url', 'upstream'), repos.url('upstream'));
    assert.match(repo('log', '-1', '--format=%s', 'upstream/main'), /upstream only/);
  });

  it('leaves file:// submodules alone unless allowed (another workspace could be pulled in)', async () => {
    const { dir, logs } = await clone({ remote_uri: repos.url('project') }, initializer({}));
    assert.deepEqual(readdirSync(path.join(dir, 'lib')), []);
    assert.ok(logs.some((l) => /submodule left out: its URL is not allowed/.test(l)));
  });

  it('sends credentials only to the host of the remote', async () => {
    const other = await startGitHttpServer(repos.root, { user: 'alice', password: 's3cret-pa55' });
    try {
      const { repo, logs } = await clone({
        remote_uri: secured.url('project'),
        upstream_Remote_uri: other.url('upstream'),
        config: { authentication: 'BASIC_AUTH', auth_user: 'alice', auth_password: 's3cret-pa55' },
      });
      assert.equal(repo('rev-parse', 'HEAD'), repos.main.tip);
      assert.ok(logs.some((l) => /fetching upstream failed/.test(l)), 'the other host got no credentials, so its fetch failed');
      assert.throws(() => repo('rev-parse', '--verify', '-q', 'upstream/main'));
    } finally {
      await other.close();
    }
  });

  it('refuses a checkout location outside the workspace folder', async () => {
    const run = initializerRun<GitSpec>({ remote_uri: repos.url('project'), checkout_location: '../escape' });
    await assert.rejects(initializer().initialize(run.options), (e: WsdError) => e.code === 'INVALID_ARGUMENT' && e.field === 'initializer.git.checkout_location');
    assert.deepEqual(readdirSync(run.sandbox), ['workspace']);
  });

  it('clones over HTTP with basic auth; the password never reaches a log line or message', async () => {
    const ok = await clone({ remote_uri: secured.url('project'), config: { authentication: 'BASIC_AUTH', auth_user: 'alice', auth_password: 's3cret-pa55' } });
    assert.equal(ok.repo('rev-parse', 'HEAD'), repos.main.tip);
    assert.ok(!ok.logs.some((l) => l.includes('s3cret-pa55')));
    assert.ok(!readFileSync(path.join(ok.dir, '.git', 'config'), 'utf8').includes('s3cret-pa55'), 'not stored in the clone either');

    const run = initializerRun<GitSpec>({ remote_uri: secured.url('project'), config: { authentication: 'BASIC_AUTH', auth_user: 'alice', auth_password: 'wrong-password-42' } });
    const started = Date.now();
    const before = secured.requests;
    await assert.rejects(initializer().initialize(run.options), (e: WsdError) => {
      assert.equal(e.code, 'PERMISSION_DENIED');
      assert.ok(!e.message.includes('wrong-password-42'));
      return true;
    });
    assert.ok(Date.now() - started < 5000, 'access denied is not retried');
    assert.ok(secured.requests - before <= 3, `a single attempt (${secured.requests - before} requests)`);
    assert.ok(!run.logs.some((l) => l.includes('wrong-password-42')));
  });

  it('fetches credentials once from a one-time secret (BASIC_AUTH_OTS)', async () => {
    const ots = secured.oneTimeSecret('alice:s3cret-pa55');
    const git = initializer();
    const first = await clone({ remote_uri: secured.url('project'), config: { authentication: 'BASIC_AUTH_OTS', auth_ots: ots } }, git);
    assert.equal(first.repo('rev-parse', 'HEAD'), repos.main.tip);
    // The secret is used up at the server; the initializer's cache still has it (a retried clone needs it again).
    assert.equal((await fetch(ots)).status, 404);
    const again = await clone({ remote_uri: secured.url('project'), config: { authentication: 'BASIC_AUTH_OTS', auth_ots: ots } }, git);
    assert.equal(again.repo('rev-parse', 'HEAD'), repos.main.tip);
    await assert.rejects(
      clone({ remote_uri: secured.url('project'), config: { authentication: 'BASIC_AUTH_OTS', auth_ots: ots } }),
      (e: WsdError) => e.code === 'FAILED_PRECONDITION' && /auth_ots/.test(e.message),
    );
  });

  it('retries transient server failures with backoff', async () => {
    http.failNext(2);
    const { repo, logs } = await clone({ remote_uri: http.url('project') });
    assert.equal(repo('rev-parse', 'HEAD'), repos.main.tip);
    assert.ok(logs.filter((l) => /retrying/.test(l)).length >= 1);
  });

  it('fails an unknown repository without retrying for long', async () => {
    const started = Date.now();
    await assert.rejects(clone({ remote_uri: http.url('nope') }), (e: WsdError) => e.code === 'FAILED_PRECONDITION' || e.code === 'UNAVAILABLE');
    assert.ok(Date.now() - started < 15_000);
    assert.equal(existsSync(path.join(repos.root, 'nope.git')), false);
  });
});
