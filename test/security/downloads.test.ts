/**
 * Probe finding #11: the download initializer fetched anything the node could reach (loopback services, the cloud
 * metadata address) and told the caller the sha256 of what it fetched. Servers here listen on loopback only; each
 * counts the requests it gets, so "refused" means "no request was made".
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import { errorText, meta, outcomeText, settle, startCountingServer, startTestDaemon, stateFile, type CountingServer, type TestDaemon } from '../kit/security-fixtures.js';
import { tempDir } from '../kit/temp-dir.js';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';

const refusedMessage = /not allowed by initializers\.download\.deniedNetworks/;
const anyDigest = `sha256:${'0'.repeat(64)}`;

describe('security: downloads (#11)', () => {
  let server: CountingServer;
  let strict: TestDaemon; // download: {} — the defaults
  let local: TestDaemon; // 127.0.0.1/32 allowed, maxBytes 4096
  let n = 0;
  const id = (label: string) => `${label}-${++n}`;
  const rejected = (promise: Promise<unknown>): Promise<ServiceError> =>
    promise.then(
      () => assert.fail('the init succeeded'),
      (error: ServiceError) => error,
    );
  const download = (wsd: TestDaemon, url: string, digest = anyDigest) => {
    const ws = id('dl');
    return rejected(wsd.client.initWorkspace({ id: ws, metadata: meta(ws), initializer: { download: { files: [{ url, file_path: 'f.bin', digest }] } } })).then((error) => ({ ws, error }));
  };

  before(async () => {
    server = await startCountingServer({ body: 'loopback service answer\n' });
    strict = await startTestDaemon(tempDir('wsd-sec-dl-strict-'));
    local = await startTestDaemon(tempDir('wsd-sec-dl-local-'), { download: { allowedNetworks: ['127.0.0.1/32'], maxBytes: 4096 } });
  });
  after(async () => {
    await strict?.stop();
    await local?.stop();
    await server?.close();
  });

  it('#11 by default a download from loopback is refused before any request (127.0.0.1, localhost, 0.0.0.0, 127.1, 2130706433, [::ffff:127.0.0.1])', async () => {
    const p = server.port;
    for (const url of [`http://127.0.0.1:${p}/x`, `http://localhost:${p}/x`, `http://0.0.0.0:${p}/x`, `http://127.1:${p}/x`, `http://2130706433:${p}/x`, `http://[::ffff:127.0.0.1]:${p}/x`]) {
      const { error } = await download(strict, url);
      assert.deepEqual(server.requests, [], `HOLE OPEN: ${url} reached the loopback server (${status[error.code]}: ${error.details})`);
      assert.ok(error.code === status.FAILED_PRECONDITION || refusedMessage.test(error.details), `${url}: ${status[error.code]}: ${error.details}`);
      assert.match(error.details, refusedMessage, url);
    }
  });

  it('#11 by default a download from ::1 is refused before any request', async (t) => {
    const v6 = await startCountingServer({ host: '::1' }).catch(() => undefined);
    if (!v6) return t.skip('no IPv6 loopback here');
    try {
      const { error } = await download(strict, `http://[::1]:${v6.port}/x`);
      assert.deepEqual(v6.requests, [], `HOLE OPEN: [::1] reached the loopback server (${status[error.code]}: ${error.details})`);
      assert.match(error.details, refusedMessage);
    } finally {
      await v6.close();
    }
  });

  it('#11 by default the cloud metadata address 169.254.169.254 is refused (before connecting)', async () => {
    for (const url of ['http://169.254.169.254/latest/meta-data/iam/security-credentials/', 'http://[::ffff:169.254.169.254]/latest/meta-data/']) {
      const started = Date.now();
      const { error } = await download(strict, url);
      assert.equal(error.code, status.FAILED_PRECONDITION, `${url}: ${status[error.code]}: ${error.details}`);
      assert.match(error.details, refusedMessage, url);
      assert.ok(Date.now() - started < 5_000, 'refused at once, not after a connection attempt');
    }
  });

  it('#11 class (git remotes): with the default git policy a remote on loopback is not connected to (no port scan of the node through clone errors)', async () => {
    let connections = 0;
    const listener = net.createServer((socket) => {
      connections++;
      socket.end('SSH-2.0-loopback-service\r\n');
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const port = (listener.address() as net.AddressInfo).port;
    try {
      for (const remote_uri of [`https://127.0.0.1:${port}/x.git`, `ssh://git@127.0.0.1:${port}/x.git`, `https://localhost:${port}/x.git`]) {
        const ws = id('git-loopback');
        const error = await settle(strict.client.initWorkspace({ id: ws, metadata: meta(ws), initializer: { git: { remote_uri } } }));
        assert.equal(connections, 0, `HOLE OPEN: the git initializer connected to a loopback port for ${remote_uri} (${outcomeText(error)}); downloads refuse loopback and link-local, git remotes do not — and the error text tells an open port from a closed one`);
      }
    } finally {
      listener.close();
    }
  });

  it('#11 a redirect from an allowed server to a denied address (127.0.0.2) is refused; the denied server gets no request', async () => {
    const denied = await startCountingServer({ host: '127.0.0.2' });
    const redirector = await startCountingServer({ handler: (_req, res) => res.writeHead(302, { location: `${denied.origin}/internal` }).end() });
    try {
      const { error } = await download(local, `${redirector.origin}/start`);
      assert.equal(redirector.requests.length, 1, 'the allowed server was asked');
      assert.deepEqual(denied.requests, [], `HOLE OPEN: the redirect reached ${denied.origin} (${status[error.code]}: ${error.details})`);
      assert.match(error.details, refusedMessage);
    } finally {
      await denied.close();
      await redirector.close();
    }
  });

  it('#11 a digest mismatch does not reveal the sha256 of the content (no digest oracle)', async () => {
    const content = randomBytes(512);
    const actual = createHash('sha256').update(content).digest('hex');
    const secretServer = await startCountingServer({ body: content });
    try {
      const { ws, error } = await download(local, `${secretServer.origin}/secret`);
      assert.equal(secretServer.requests.length, 1, `the download reached the server: ${error.details}`);
      assert.equal(error.code, status.FAILED_PRECONDITION, error.details);
      const detail = await local.client.describeWorkspace(ws);
      const places: Record<string, string> = {
        'gRPC error': errorText(error),
        'DescribeWorkspace.last_error': detail.last_error,
        'state file': existsSync(stateFile(local.dataDir, ws)) ? readFileSync(stateFile(local.dataDir, ws), 'utf8') : '',
      };
      for (const [place, text] of Object.entries(places)) {
        assert.ok(!text.toLowerCase().includes(actual), `HOLE OPEN: the content's sha256 is in the ${place}: ${text.slice(0, 300)}`);
        assert.ok(!text.includes(content.toString('base64')), `the content is in the ${place}`);
      }
    } finally {
      await secretServer.close();
    }
  });

  it('#11 a download larger than maxBytes fails with RESOURCE_EXHAUSTED, declared or streamed', async () => {
    const big = randomBytes(64 * 1024);
    const digest = `sha256:${createHash('sha256').update(big).digest('hex')}`;
    const declared = await startCountingServer({ body: big });
    const chunked = await startCountingServer({
      handler: (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        for (let i = 0; i < big.length; i += 1024) res.write(big.subarray(i, i + 1024));
        res.end();
      },
    });
    try {
      for (const origin of [declared.origin, chunked.origin]) {
        const ws = id('dl-big');
        const error = await settle(local.client.initWorkspace({ id: ws, metadata: meta(ws), initializer: { download: { files: [{ url: `${origin}/big`, file_path: 'big.bin', digest }] } } }));
        assert.ok(error, `HOLE OPEN: a ${big.length}-byte download was accepted although maxBytes is 4096 (${origin === declared.origin ? 'content-length declared' : 'chunked'})`);
        assert.equal(error.code, status.RESOURCE_EXHAUSTED, `${origin}: ${status[error.code]}: ${error.details}`);
      }
    } finally {
      await declared.close();
      await chunked.close();
    }
  });
});
