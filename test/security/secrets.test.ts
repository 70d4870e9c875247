/**
 * Probe finding #10: secrets at rest. Credentials in git remote URLs (`http://user:TOKEN@host/…`) and presigned
 * download URLs (`?X-Amz-Signature=SECRET`) must not reach the state file, the logs (debug level here), the
 * describe answer or the gRPC error the caller gets.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import { makeRepos, startGitHttpServer, type GitHttpServer, type TestRepos } from '../kit/git-fixtures.js';
import { errorText, meta, startCountingServer, startTestDaemon, stateFile, token, type CountingServer, type TestDaemon } from '../kit/security-fixtures.js';
import { tempDir } from '../kit/temp-dir.js';

describe('security: secrets at rest (#10)', () => {
  let repos: TestRepos;
  let git: GitHttpServer;
  let files: CountingServer;
  let wsd: TestDaemon;
  const password = token('gitpw');
  let n = 0;
  const id = (label: string) => `${label}-${++n}`;

  /** Every place a secret could end up, as text, for workspace `ws` (and the error the caller got, if any). */
  async function everywhere(ws: string, error?: ServiceError): Promise<Record<string, string>> {
    const places: Record<string, string> = {
      'state file': existsSync(stateFile(wsd.dataDir, ws)) ? readFileSync(stateFile(wsd.dataDir, ws), 'utf8') : '',
      'logs and stderr': wsd.output(),
    };
    const detail = await wsd.client.describeWorkspace(ws).catch((e: Error) => e.message);
    places['DescribeWorkspace'] = typeof detail === 'string' ? detail : JSON.stringify(detail);
    places['ListWorkspaces'] = JSON.stringify(await wsd.client.listWorkspaces());
    if (error) places['gRPC error'] = errorText(error);
    return places;
  }
  function assertAbsent(places: Record<string, string>, secrets: string[], what: string): void {
    for (const [place, text] of Object.entries(places)) {
      for (const secret of secrets) assert.ok(!text.includes(secret), `HOLE OPEN: ${what} — ${JSON.stringify(secret)} is in the ${place}`);
    }
  }
  const rejected = (promise: Promise<unknown>): Promise<ServiceError> =>
    promise.then(
      () => assert.fail('the init succeeded'),
      (error: ServiceError) => error,
    );

  before(async () => {
    repos = makeRepos(tempDir('wsd-sec-secrets-repos-'));
    git = await startGitHttpServer(repos.root, { user: 'mallory', password });
    files = await startCountingServer({ body: 'content whose digest the request gets wrong\n' });
    wsd = await startTestDaemon(tempDir('wsd-sec-secrets-'), {
      git: { protocols: ['https', 'http'], allowedNetworks: ['127.0.0.1/32'] },
      download: { allowedNetworks: ['127.0.0.1/32'] },
    });
  });
  after(async () => {
    await wsd?.stop();
    await git?.close();
    await files?.close();
  });

  it('#10 credentials in remote_uri and upstream_Remote_uri are not stored in the state file nor logged (successful clone)', async () => {
    const ws = id('git-creds');
    await wsd.client.initWorkspace({
      id: ws,
      metadata: meta(ws),
      initializer: { git: { remote_uri: git.url('project', `mallory:${password}`), upstream_Remote_uri: git.url('upstream', `mallory:${password}`) } },
    });
    const places = await everywhere(ws);
    assert.ok(places['state file'].includes('127.0.0.1'), 'the state file holds the (redacted) remote');
    assertAbsent(places, [password], 'a clone with credentials in the remote URL');
    await wsd.client.disposeWorkspace(ws);
  });

  it('#10 (beyond the probe) a token in remote_uri is not left in the checkout\'s .git/config, from where backups, snapshots and shared prebuilds would carry it', async () => {
    const ws = id('git-creds-config');
    await wsd.client.initWorkspace({ id: ws, metadata: meta(ws), initializer: { git: { remote_uri: git.url('project', `mallory:${password}`) } } });
    try {
      const config = readFileSync(`${wsd.folder(ws)}/.git/config`, 'utf8');
      assert.ok(!config.includes(password), `HOLE OPEN: the workspace's .git/config keeps the token of remote_uri:\n${config.replace(password, '<TOKEN>')}`);
    } finally {
      await wsd.client.disposeWorkspace(ws);
    }
  });

  it('#10 credentials in remote_uri do not leak through a failed clone: not in the gRPC error, lastError, DescribeWorkspace.last_error, state file or logs', async () => {
    const wrong = token('wrongpw');
    for (const [remote, secret] of [
      [git.url('no-such-repo', `mallory:${password}`), password],
      [git.url('project', `mallory:${wrong}`), wrong],
      [git.url('project', `mallory:${wrong}%E0%A4%A`), wrong], // a password that does not percent-decode
    ] as const) {
      const ws = id('git-creds-fail');
      const error = await rejected(wsd.client.initWorkspace({ id: ws, metadata: meta(ws), initializer: { git: { remote_uri: remote } } }));
      const places = await everywhere(ws, error);
      assert.ok(places['state file'].includes('"failed"'), `the failed record is kept: ${places['state file'].slice(0, 200)}`);
      assertAbsent(places, [secret], `a failed clone of ${remote.replace(secret, '<secret>')} (${status[error.code]})`);
    }
  });

  it('#10 a presigned download URL (X-Amz-Signature, userinfo) is not in logs, lastError, DescribeWorkspace.last_error, the state file or the gRPC error', async () => {
    const signature = token('sig');
    const credential = token('cred');
    const userPassword = token('dlpw');
    const [host, port] = ['127.0.0.1', files.port];
    const urls = [
      `http://${host}:${port}/bucket/file.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${credential}&X-Amz-Signature=${signature}`,
      `http://user:${userPassword}@${host}:${port}/bucket/file.bin#${signature}`,
    ];
    for (const url of urls) {
      const ws = id('dl-secret');
      const before = files.requests.length;
      const error = await rejected(
        wsd.client.initWorkspace({ id: ws, metadata: meta(ws), initializer: { download: { files: [{ url, file_path: 'file.bin', digest: `sha256:${'0'.repeat(64)}` }] } } }),
      );
      assert.equal(files.requests.length, before + 1, `the download reached the server (so the digest check failed, not the address check): ${error.details}`);
      assert.equal(error.code, status.FAILED_PRECONDITION, error.details);
      assertAbsent(await everywhere(ws, error), [signature, credential, userPassword], `a digest mismatch of a presigned URL`);
    }
  });

  it('#10 a presigned URL is not in what a failing request (HTTP 403, 500, closed port) leaves behind', async () => {
    const signature = token('sig');
    const failing = await startCountingServer({ handler: (req, res) => res.writeHead(req.url?.startsWith('/403') ? 403 : 500).end('no') });
    const closed = await startCountingServer();
    const closedPort = closed.port;
    await closed.close();
    try {
      for (const url of [`${failing.origin}/403/f?X-Amz-Signature=${signature}`, `${failing.origin}/500/f?X-Amz-Signature=${signature}`, `http://127.0.0.1:${closedPort}/f?X-Amz-Signature=${signature}`]) {
        const ws = id('dl-fail');
        const error = await rejected(
          wsd.client.initWorkspace({ id: ws, metadata: meta(ws), initializer: { download: { files: [{ url, file_path: 'f', digest: `sha256:${'0'.repeat(64)}` }] } } }),
        );
        assertAbsent(await everywhere(ws, error), [signature], `a failed download (${status[error.code]}: ${error.details})`);
      }
    } finally {
      await failing.close();
    }
  });
});
