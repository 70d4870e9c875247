import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isWsdError } from '../../../core/errors.js';
import { makeTestPki } from '../../../test/kit/certificates.js';
import { startMinio, type StartedMinio } from '../../../test/kit/servers/minio.js';
import { startTestKernel } from '../../../test/kit/start-test-kernel.js';
import { tempDir } from '../../../test/kit/temp-dir.js';
import { StorageHealthCheck } from '../../health/storage/storage-health-check.js';
import { s3Backend } from '../../../test/kit/storage-s3/s3-test-setup.js';

/** What start() checks, and the credential sources, against a real MinIO. */
describe('storage/s3 start and credentials', { timeout: 300_000 }, () => {
  let minio: StartedMinio;

  before(async () => {
    minio = await startMinio();
  });
  after(async () => {
    await minio?.server.stop();
  });

  const secretFiles = (id: string, secret: string) => {
    const dir = tempDir('wsd-s3-secrets-');
    writeFileSync(path.join(dir, 'id'), id);
    writeFileSync(path.join(dir, 'secret'), secret);
    return { source: 'files', accessKeyIdFile: path.join(dir, 'id'), secretAccessKeyFile: path.join(dir, 'secret') };
  };

  it('fails start() on a missing bucket, naming the plugin, the bucket and the way out', async () => {
    const backend = s3Backend(minio, { bucket: 'no-such-bucket' });
    await assert.rejects(backend.start(), (error: unknown) => {
      assert.ok(isWsdError(error, 'FAILED_PRECONDITION'), String(error));
      assert.match(error.message, /^storage\/s3: bucket no-such-bucket does not exist at http:\/\/127\.0\.0\.1:\d+ \(NoSuchBucket\); create it, or set createBucket: true$/);
      return true;
    });
    await backend.stop();
    assert.equal(await minio.client().bucketExists('no-such-bucket'), false, 'nothing was created');
  });

  it('creates the bucket at start with createBucket: true, and starts again once it exists', async () => {
    const backend = s3Backend(minio, { bucket: 'made-by-wsd', createBucket: true });
    await backend.start();
    assert.equal(await minio.client().bucketExists('made-by-wsd'), true);
    await backend.put({ key: 'k', body: Buffer.from('v') });
    await backend.stop();
    const again = s3Backend(minio, { bucket: 'made-by-wsd', createBucket: true });
    await again.start();
    await again.stop();
  });

  it('fails start() with PERMISSION_DENIED on a wrong secret or an unknown key, and never shows a secret', async () => {
    const wrongSecret = 'not-the-secret-0123456789';
    for (const [credentials, code] of [
      [secretFiles(minio.rootUser, wrongSecret), 'SignatureDoesNotMatch'],
      [secretFiles('nobody-here', minio.rootPassword), 'InvalidAccessKeyId'],
    ] as const) {
      const backend = s3Backend(minio, { credentials });
      await assert.rejects(backend.start(), (error: unknown) => {
        assert.ok(isWsdError(error, 'PERMISSION_DENIED'), String(error));
        assert.match(error.message, new RegExp(`^storage/s3: start: list the bucket \\(bucket wsd-test at http://127\\.0\\.0\\.1:\\d+\\): 403 ${code}`));
        assert.ok(!error.message.includes(wrongSecret) && !error.message.includes(minio.rootPassword), 'no secret in the message');
        return true;
      });
      await backend.stop();
    }
  });

  it('names the credential file it cannot read', async () => {
    const credentials = { ...secretFiles(minio.rootUser, minio.rootPassword), secretAccessKeyFile: '/nonexistent/secret' };
    const backend = s3Backend(minio, { credentials });
    await assert.rejects(backend.start(), (error: unknown) => {
      assert.ok(isWsdError(error, 'FAILED_PRECONDITION'), String(error));
      assert.equal(error.message, 'storage/s3: credentials.secretAccessKeyFile /nonexistent/secret cannot be read (ENOENT)');
      return true;
    });
    await backend.stop();
  });

  it('takes keys from the environment (source env, and auto when AWS_ACCESS_KEY_ID is set)', async () => {
    const env = { AWS_ACCESS_KEY_ID: minio.rootUser, AWS_SECRET_ACCESS_KEY: minio.rootPassword };
    for (const source of ['env', 'auto']) {
      const backend = s3Backend(minio, { credentials: { source } }, { env });
      await backend.start();
      await backend.put({ key: `from-${source}`, body: Buffer.from('x') });
      await backend.stop();
    }
    const missing = s3Backend(minio, { credentials: { source: 'env' } }, { env: { AWS_ACCESS_KEY_ID: minio.rootUser } });
    await assert.rejects(missing.start(), /^WsdError: storage\/s3: credentials.source env: AWS_SECRET_ACCESS_KEY not set in the environment$/);
    await missing.stop();
  });

  it('takes temporary credentials from the instance metadata service (source iam, IMDSv2)', async () => {
    const imds = await startFakeImds({ accessKey: minio.rootUser, secretKey: minio.rootPassword });
    try {
      const backend = s3Backend(minio, { credentials: { source: 'iam', imdsEndpoint: imds.endpoint } }, { env: {} });
      await backend.start();
      await backend.put({ key: 'from-iam', body: Buffer.from('x') });
      await backend.head({ key: 'from-iam' });
      await backend.stop();
      assert.deepEqual(imds.requests, [
        'PUT /latest/api/token',
        'GET /latest/meta-data/iam/security-credentials/ (token)',
        'GET /latest/meta-data/iam/security-credentials/wsd-node-role (token)',
      ], 'credentials fetched once and cached until they near expiry');
    } finally {
      await imds.close();
    }
  });

  it('fails the daemon\'s start, naming storage/s3 and the service\'s reason, on wrong credentials', async () => {
    const kernel = startTestKernel({
      config: { storage: { plugin: 's3', s3: { ...minio.storageConfig, credentials: secretFiles(minio.rootUser, 'wrong-secret-abcdef') } } },
    });
    await assert.rejects(kernel, (error: unknown) => {
      assert.ok(isWsdError(error), String(error));
      assert.match(error.message, /storage\/s3: start failed: storage\/s3: start: list the bucket .*403 SignatureDoesNotMatch/);
      assert.ok(!error.message.includes('wrong-secret-abcdef'));
      return true;
    });
  });

  it('reports a storage health check failing with the reason once the bucket is gone', async () => {
    await minio.client().makeBucket('short-lived', 'us-east-1');
    const backend = s3Backend(minio, { bucket: 'short-lived' });
    await backend.start();
    const check = new StorageHealthCheck(backend, { critical: true });
    const signal = new AbortController().signal;
    assert.deepEqual(await check.check(signal), { status: 'ok' });
    await minio.client().removeBucket('short-lived');
    const failing = await check.check(signal);
    assert.equal(failing.status, 'failing');
    assert.match(failing.reason!, /^storage: storage\/s3: put wsd-health\/.* \(bucket short-lived at .*\): 404 NoSuchBucket/);
    await backend.stop();
  });
});

describe('storage/s3 over https', { timeout: 300_000 }, () => {
  it('trusts the server through caFile, and refuses it without', async () => {
    const pki = makeTestPki(tempDir('wsd-s3-pki-'));
    const minio = await startMinio({ tls: { certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.caCert } });
    try {
      const { caFile, ...withoutCa } = minio.storageConfig;
      const trusted = s3Backend(minio, {}, { ca: readFileSync(caFile!, 'utf8') });
      await trusted.start();
      await trusted.put({ key: 'over-tls', body: Buffer.from('secret bytes') });
      assert.equal((await readAll((await trusted.get({ key: 'over-tls' })).body)).toString(), 'secret bytes');
      await trusted.stop();

      const untrusted = s3Backend({ storageConfig: withoutCa }, {});
      await assert.rejects(untrusted.start(), (error: unknown) => {
        assert.ok(isWsdError(error, 'FAILED_PRECONDITION'), String(error));
        assert.match(error.message, /TLS: .*caFile/);
        return true;
      });
      await untrusted.stop();
    } finally {
      await minio.server.stop();
    }
  });
});

/** An EC2 instance metadata service (IMDSv2) on 127.0.0.1 that hands out the given keys for role `wsd-node-role`. */
async function startFakeImds(keys: { accessKey: string; secretKey: string }) {
  const requests: string[] = [];
  const token = 'imds-session-token';
  const server = http.createServer((req, res) => {
    const withToken = req.headers['x-aws-ec2-metadata-token'] === token;
    requests.push(`${req.method} ${req.url}${withToken ? ' (token)' : ''}`);
    if (req.method === 'PUT' && req.url === '/latest/api/token') return res.end(token);
    if (!withToken) return res.writeHead(401).end();
    if (req.url === '/latest/meta-data/iam/security-credentials/') return res.end('wsd-node-role\n');
    if (req.url === '/latest/meta-data/iam/security-credentials/wsd-node-role') {
      // The field names AWS uses (AccessKeyId, not minio-js' AccessKeyID).
      return res.end(JSON.stringify({ Code: 'Success', Type: 'AWS-HMAC', AccessKeyId: keys.accessKey, SecretAccessKey: keys.secretKey, Expiration: new Date(Date.now() + 3600_000).toISOString() }));
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}
