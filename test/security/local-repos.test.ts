/**
 * Probe finding #4: any repository on the node was readable — `remote_uri: "/some/host/path"` or `file://…` cloned
 * the node's repositories into a workspace. Local repositories may now only come from `initializers.git.localRoots`.
 * A "host" repository outside the allowed root holds a secret file; it must never show up in a workspace.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import { sh } from '../kit/git-fixtures.js';
import { errorField, type InitWorkspaceRequest } from '../../core/api/client.js';
import { assertRefusal, meta, outcomeText, plantRepo, settle, startTestDaemon, type TestDaemon } from '../kit/security-fixtures.js';
import { tempDir } from '../kit/temp-dir.js';

describe('security: local repositories outside initializers.git.localRoots (#4)', () => {
  let base: string;
  let allowed: string;
  let hostRepo: string;
  const secret = `host-secret-${randomBytes(8).toString('hex')}`;
  let wsd: TestDaemon;
  let n = 0;
  const id = (label: string) => `${label}-${++n}`;

  /**
   * The init must not leave a workspace holding the host repository's secret file, and must be refused with one of
   * `expect` naming `field`.
   */
  async function assertNotCloned(
    request: InitWorkspaceRequest,
    what: string,
    expect: status[] = [status.INVALID_ARGUMENT],
    field = 'initializer.git.remote_uri',
  ): Promise<void> {
    const outcome = await settle(wsd.client.initWorkspace(request));
    const file = path.join(wsd.folder(request.id!), request.initializer?.git?.checkout_location ?? '', 'secret.txt');
    const leaked = existsSync(file) && readFileSync(file, 'utf8').includes(secret);
    if (outcome === undefined) await wsd.client.disposeWorkspace(request.id!).catch(() => undefined);
    assert.equal(leaked, false, `HOLE OPEN: ${what} — the host repository outside localRoots was cloned into the workspace`);
    assert.ok(outcome && expect.includes(outcome.code), `${what}: expected ${expect.map((c) => status[c]).join(' or ')}, got ${outcomeText(outcome)}`);
    assert.equal(errorField(outcome), field, `${what}: field at fault`);
  }

  before(async () => {
    base = tempDir('wsd-sec-local-');
    allowed = path.join(base, 'allowed');
    mkdirSync(allowed);
    // The node's own repository, outside the allowed root.
    const host = path.join(base, 'host');
    mkdirSync(host);
    hostRepo = plantRepo(host, 'secret', { 'secret.txt': `${secret}\n` }).slice('file://'.length);
    plantRepo(allowed, 'fine', { 'README.md': 'fine\n' });
    wsd = await startTestDaemon(path.join(base), { git: { protocols: ['https', 'ssh', 'http', 'file'], localRoots: [allowed], allowedNetworks: ['127.0.0.1/32'] } });
  });
  after(async () => {
    await wsd?.stop();
  });

  it('#4 a host repository outside localRoots is refused by path and by file:// URL, also through ".." and as upstream (INVALID_ARGUMENT naming the field)', async () => {
    const remotes = [hostRepo, `file://${hostRepo}`, `${allowed}/../host/secret.git`, `file://${allowed}/../host/secret.git`, `file://${allowed}/%2e%2e/host/secret.git`];
    for (const remote_uri of remotes) {
      const ws = id('host');
      await assertNotCloned({ id: ws, metadata: meta(ws), initializer: { git: { remote_uri } } }, `remote_uri ${remote_uri}`);
    }
    const ws = id('host-upstream');
    await assertNotCloned(
      { id: ws, metadata: meta(ws), initializer: { git: { remote_uri: `file://${allowed}/fine.git`, upstream_Remote_uri: hostRepo } } },
      'upstream_Remote_uri names the host repository',
      [status.INVALID_ARGUMENT],
      'initializer.git.upstream_Remote_uri',
    );
    // A repository inside the allowed root is fine.
    const ok = id('allowed');
    await wsd.client.initWorkspace({ id: ok, metadata: meta(ok), initializer: { git: { remote_uri: `file://${allowed}/fine.git` } } });
    await wsd.client.disposeWorkspace(ok);
  });

  it('#4 no probing of the node: existing and missing paths outside localRoots get the same answer', async () => {
    const answers: Array<{ remote: string; error: ServiceError | undefined }> = [];
    for (const remote of [path.dirname(hostRepo), path.join(path.dirname(hostRepo), `missing-${randomBytes(4).toString('hex')}`)]) {
      const ws = id('probe');
      answers.push({ remote, error: await settle(wsd.client.initWorkspace({ id: ws, metadata: meta(ws), initializer: { git: { remote_uri: remote } } })) });
    }
    const [existing, missing] = answers.map(({ remote, error }) => `${outcomeText(error).replace(remote, '<path>')}`);
    assert.equal(existing, missing, 'HOLE OPEN: an existing and a missing path outside localRoots get different answers (the API tells which paths exist on the node)');
    for (const { error } of answers) assertRefusal(error, status.INVALID_ARGUMENT, { field: 'initializer.git.remote_uri' });
  });

  it('#4 a symlink inside an allowed root leading out is refused', async () => {
    const link = path.join(allowed, `link-${n}.git`);
    symlinkSync(hostRepo, link);
    const dirLink = path.join(allowed, `dirlink-${n}`);
    symlinkSync(path.dirname(hostRepo), dirLink);
    for (const remote_uri of [link, `file://${link}`, `${dirLink}/secret.git`]) {
      const ws = id('symlink');
      await assertNotCloned({ id: ws, metadata: meta(ws), initializer: { git: { remote_uri } } }, `symlink ${remote_uri}`);
    }
  });

  it('#4 a gitfile (".git" file saying "gitdir: <host repository>") inside an allowed root is no way out', async () => {
    const decoy = path.join(allowed, `gitfile-${n}`);
    mkdirSync(decoy);
    writeFileSync(path.join(decoy, '.git'), `gitdir: ${hostRepo}\n`);
    for (const remote_uri of [decoy, `file://${decoy}`]) {
      const ws = id('gitfile');
      // Refused as not allowed, or as "not a repository" (the path itself is none): either way nothing is cloned.
      await assertNotCloned({ id: ws, metadata: meta(ws), initializer: { git: { remote_uri } } }, `gitfile ${remote_uri}`, [status.INVALID_ARGUMENT, status.FAILED_PRECONDITION]);
    }
  });

  it('#4 "<path>.git" beside a decoy folder inside an allowed root (git tries the .git suffix) is no way out', async () => {
    const decoy = path.join(allowed, `decoy-${n}`);
    mkdirSync(decoy);
    symlinkSync(hostRepo, `${decoy}.git`);
    for (const remote_uri of [decoy, `file://${decoy}`]) {
      const ws = id('suffix');
      await assertNotCloned({ id: ws, metadata: meta(ws), initializer: { git: { remote_uri } } }, `".git" suffix lookup ${remote_uri}`, [status.INVALID_ARGUMENT, status.FAILED_PRECONDITION]);
    }
  });

  it('#4 a submodule that names a host repository is not cloned', async () => {
    const work = path.join(base, 'work', `with-sub-${n}`);
    mkdirSync(work, { recursive: true });
    sh(work, 'init', '-q', '-b', 'main');
    writeFileSync(path.join(work, 'README.md'), 'super\n');
    sh(work, 'add', '.');
    sh(work, 'submodule', 'add', '-q', hostRepo, 'sub');
    sh(work, 'commit', '-q', '-m', 'with submodule');
    const bare = path.join(allowed, `with-sub-${n}.git`);
    sh(base, 'clone', '--bare', '-q', work, bare);
    const ws = id('submodule');
    await wsd.client.initWorkspace({ id: ws, metadata: meta(ws), initializer: { git: { remote_uri: `file://${bare}` } } });
    try {
      assert.equal(existsSync(path.join(wsd.folder(ws), 'sub', 'secret.txt')), false, 'HOLE OPEN: the submodule cloned the host repository');
    } finally {
      await wsd.client.disposeWorkspace(ws);
    }
  });

  it('#4 with the default policy (no localRoots) every local path and file:// URL is refused', async () => {
    const other = await startTestDaemon(tempDir('wsd-sec-local-default-'));
    try {
      for (const remote_uri of [hostRepo, `file://${hostRepo}`, `${allowed}/fine.git`, './relative.git']) {
        const ws = `default-${++n}`;
        const outcome = await other.client.initWorkspace({ id: ws, metadata: meta(ws), initializer: { git: { remote_uri } } }).then(
          () => undefined,
          (error: { code: number; details: string }) => error,
        );
        const leaked = existsSync(path.join(other.folder(ws), 'secret.txt'));
        assert.equal(leaked, false, `HOLE OPEN: ${remote_uri} was cloned with the default policy`);
        assert.equal(outcome?.code, status.INVALID_ARGUMENT, `${remote_uri}: ${outcome ? `${status[outcome.code]} ${outcome.details}` : 'init succeeded'}`);
      }
    } finally {
      await other.stop();
    }
  });
});
