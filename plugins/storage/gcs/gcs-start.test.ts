import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isWsdError } from '../../../core/plugin-api.js';
import { ConfigError } from '../../../core/config/config-error.js';
import { validateConfig } from '../../../core/config/load-config.js';
import { coreTokens } from '../../../core/kernel/core-tokens.js';
import { builtinPlugins } from '../../builtins.js';
import { StorageHealthCheck } from '../../health/storage/storage-health-check.js';
import { makeTestPki } from '../../../test/kit/certificates.js';
import { guardLoopback } from '../../../test/kit/loopback-guard.js';
import { startFakeGcs, type FakeGcs } from '../../../test/kit/servers/fake-gcs.js';
import { freePort } from '../../../test/kit/servers/server-process.js';
import { startFaultProxy, type FaultProxy, type ProxiedRequest } from '../../../test/kit/servers/fault-proxy.js';
import { tempDir } from '../../../test/kit/temp-dir.js';
import { gcsStoragePlugin } from './plugin.js';
import { GcsStorageBackend } from './gcs-storage-backend.js';

const guard = guardLoopback();
after(() => assert.deepEqual(guard.violations, [], 'no connection left 127.0.0.1'));

async function expectCode(promise: Promise<unknown>, code: string): Promise<Error & { field?: string }> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => {
    caught = error;
    assert.ok(isWsdError(error), `a WsdError, not ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
  return caught as Error & { field?: string };
}

async function issuesOf(gcs: unknown): Promise<string[]> {
  try {
    await validateConfig({ storage: { plugin: 'gcs', gcs } }, { builtins: builtinPlugins, coreTokens, source: 'test.yaml', baseDir: '/srv/wsd', env: {} });
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.issues.map((i) => `${i.path}: ${i.message}`);
  }
  return [];
}

describe('storage/gcs config', () => {
  it('names every bad setting by its path', async () => {
    const issues = await issuesOf({
      bucket: 'Not_A_Bucket!',
      prefix: '/abs',
      endpoint: 'ftp://storage.example',
      chunkSize: '1000KiB',
      requestTimeout: 'soon',
      retries: -1,
      projectId: 'x',
      typo: true,
    });
    const paths = issues.map((i) => i.slice(0, i.indexOf(':')));
    for (const field of ['bucket', 'prefix', 'endpoint', 'chunkSize', 'requestTimeout', 'retries', 'projectId']) {
      assert.ok(paths.includes(`storage.gcs.${field}`), `storage.gcs.${field} in ${JSON.stringify(issues)}`);
    }
    assert.ok(issues.some((i) => /^storage\.gcs(\.typo)?: .*(typo|unknown|Unrecognized)/i.test(i)), JSON.stringify(issues));
    assert.ok(issues.some((i) => /storage\.gcs\.chunkSize: must be a multiple of 256KiB/.test(i)));
  });

  it('applies defaults: the JSON API at storage.googleapis.com, 32 MiB chunks, credentials from the environment', async () => {
    const config = await validateConfig({ storage: { plugin: 'gcs', gcs: { bucket: 'wsd-backups' } } }, { builtins: builtinPlugins, coreTokens, source: 'test.yaml', baseDir: '/srv/wsd', env: {} });
    assert.deepEqual(config.pluginConfigs.get('storage/gcs'), {
      bucket: 'wsd-backups',
      prefix: '',
      endpoint: 'https://storage.googleapis.com',
      anonymous: false,
      chunkSize: 32 * 1024 * 1024,
      requestTimeout: 60_000,
      retries: 5,
      retryDelay: 500,
      createBucket: false,
    });
  });

  it('requires the bucket when gcs is the chosen plugin, and resolves files next to the config', async () => {
    const context = (config: object) => ({ config: config as never, resolvePath: (p: string) => path.resolve('/etc/wsd', p) }) as never;
    await assert.rejects(async () => gcsStoragePlugin.create(context({ prefix: '' })), (error: unknown) => {
      assert.ok(isWsdError(error, 'INVALID_ARGUMENT'));
      assert.equal(error.field, 'storage.gcs.bucket');
      return true;
    });
    const backend = (await gcsStoragePlugin.create(context({ bucket: 'b', prefix: 'p/', endpoint: 'http://127.0.0.1:1', keyFile: 'sa.json' }))) as GcsStorageBackend;
    assert.equal(backend.bucket, 'b');
    assert.equal(backend.prefix, 'p/');
  });
});

describe('storage/gcs start', () => {
  let gcs: FakeGcs;
  before(async () => {
    gcs = await startFakeGcs({ backend: 'memory' });
  });
  after(async () => gcs?.server.stop());

  it('fails on a missing bucket, naming the plugin, the bucket and the service reason', async () => {
    const backend = new GcsStorageBackend({ ...gcs.storageConfig, bucket: 'no-such-bucket', retries: 0 });
    const error = await expectCode(backend.start(), 'FAILED_PRECONDITION');
    assert.match(error.message, /^storage\/gcs: bucket "no-such-bucket" at http:\/\/127\.0\.0\.1:\d+ does not exist \(.*\); create it, or set createBucket: true$/);
  });

  it('creates the bucket with createBucket: true, and starts on an existing one either way', async () => {
    const bucket = `created-${randomBytes(3).toString('hex')}`;
    const backend = new GcsStorageBackend({ ...gcs.storageConfig, bucket, createBucket: true });
    await backend.start();
    await backend.put({ key: 'x', body: Buffer.from('in the new bucket') });
    const listing = (await (await fetch(`${gcs.server.endpoint}/storage/v1/b`)).json()) as { items: Array<{ name: string }> };
    assert.ok(listing.items.some((b) => b.name === bucket));
    await new GcsStorageBackend({ ...gcs.storageConfig, bucket, createBucket: true }).start();
    await new GcsStorageBackend({ ...gcs.storageConfig, bucket }).start();
    await backend.stop();
  });

  it('fails with UNAVAILABLE when nothing answers, after its bounded retries', async () => {
    const backend = new GcsStorageBackend({ ...gcs.storageConfig, endpoint: `http://127.0.0.1:${await freePort()}`, retries: 2, retryDelayMs: 10 });
    const error = await expectCode(backend.start(), 'UNAVAILABLE');
    assert.match(error.message, /^storage\/gcs: bucket ".*" at http:\/\/127\.0\.0\.1:\d+: the service is unreachable \(ECONNREFUSED/);
  });

  it('refuses an unusable keyFile or caFile, naming the setting', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'not-json.json'), 'hello');
    writeFileSync(path.join(dir, 'other.json'), JSON.stringify({ type: 'something_else' }));
    writeFileSync(path.join(dir, 'not-pem.crt'), 'hello');
    for (const [options, field] of [
      [{ keyFile: path.join(dir, 'missing.json') }, 'keyFile'],
      [{ keyFile: path.join(dir, 'not-json.json') }, 'keyFile'],
      [{ keyFile: path.join(dir, 'other.json') }, 'keyFile'],
      [{ caFile: path.join(dir, 'missing.crt') }, 'caFile'],
      [{ caFile: path.join(dir, 'not-pem.crt') }, 'caFile'],
    ] as const) {
      const error = await expectCode(new GcsStorageBackend({ ...gcs.storageConfig, anonymous: false, ...options }).start(), 'INVALID_ARGUMENT');
      assert.equal(error.field, field);
      assert.match(error.message, new RegExp(`^storage/gcs: ${field} `));
    }
  });

  it('refuses work before start', async () => {
    const backend = new GcsStorageBackend(gcs.storageConfig);
    await expectCode(backend.head({ key: 'x' }), 'FAILED_PRECONDITION');
  });
});

describe('storage/gcs over TLS with a private CA (caFile)', () => {
  let gcs: FakeGcs;
  before(async () => {
    const pki = makeTestPki(tempDir());
    gcs = await startFakeGcs({ backend: 'memory', tls: { certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.caCert } });
  });
  after(async () => gcs?.server.stop());

  it('trusts the endpoint through caFile, and fails clearly without it', async () => {
    assert.match(gcs.storageConfig.endpoint, /^https:/);
    const backend = new GcsStorageBackend(gcs.storageConfig);
    await backend.start();
    const { etag } = await backend.put({ key: 'tls/a', body: Buffer.from('over tls') });
    assert.equal((await backend.head({ key: 'tls/a' })).etag, etag);
    await backend.stop();

    const { caFile: _, ...withoutCa } = gcs.storageConfig;
    const error = await expectCode(new GcsStorageBackend({ ...withoutCa, retries: 0 }).start(), 'UNAVAILABLE');
    assert.match(error.message, /TLS failed .*caFile/);
  });
});

/**
 * fake-gcs-server checks no credentials, so a proxy in front of it plays the two services that do: a token service
 * (STS, the workload identity federation exchange the auth library performs for an `external_account` key file)
 * and the storage API's check of the bearer token. Everything stays on 127.0.0.1.
 */
describe('storage/gcs credentials (token service and token check in front of fake-gcs-server)', () => {
  let gcs: FakeGcs;
  let proxy: FaultProxy;
  const goodSubject = `subject-${randomBytes(12).toString('hex')}`;
  const revokedSubject = `revoked-${randomBytes(12).toString('hex')}`;
  const accepted = `ya29.accepted-${randomBytes(12).toString('hex')}`;
  const rejected = `ya29.rejected-${randomBytes(12).toString('hex')}`;
  const dir = tempDir();

  const keyFile = (subject: string) => {
    const subjectFile = path.join(dir, `${subject}.jwt`);
    writeFileSync(subjectFile, subject);
    const file = path.join(dir, `${subject}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        type: 'external_account',
        audience: '//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/wsd/providers/test',
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        token_url: `${proxy.endpoint}/v1/token`,
        credential_source: { file: subjectFile },
      }),
    );
    return file;
  };

  const tokenService = (request: ProxiedRequest) => {
    const subject = new URLSearchParams(request.body.toString()).get('subject_token');
    if (subject === goodSubject || subject === revokedSubject) {
      const token = subject === goodSubject ? accepted : rejected;
      return { status: 200, body: JSON.stringify({ access_token: token, issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: 3600 }) };
    }
    return { status: 400, body: JSON.stringify({ error: 'invalid_grant', error_description: 'The subject token is invalid.' }) };
  };

  before(async () => {
    gcs = await startFakeGcs({ backend: 'memory' });
    proxy = await startFaultProxy(gcs.server.endpoint, (request) => {
      if (request.url.startsWith('/v1/token')) return tokenService(request);
      if (request.headers.authorization === `Bearer ${accepted}`) return 'forward';
      return { status: 401, body: JSON.stringify({ error: { code: 401, message: 'Invalid Credentials', errors: [{ reason: 'authError', message: 'Invalid Credentials', domain: 'global' }] } }) };
    });
  });
  after(async () => {
    await proxy?.close();
    await gcs?.server.stop();
  });

  const backendWith = (options: { keyFile?: string; projectId?: string }) =>
    new GcsStorageBackend({ bucket: gcs.bucket, endpoint: proxy.endpoint, retries: 1, retryDelayMs: 10, ...options });

  const assertNoSecret = (message: string) => {
    for (const secret of [goodSubject, revokedSubject, accepted, rejected]) assert.ok(!message.includes(secret), `"${message}" shows a secret`);
  };

  it('uses a key file: exchanges it for a token and sends that with every request', async () => {
    const backend = backendWith({ keyFile: keyFile(goodSubject) });
    await backend.start();
    const { etag } = await backend.put({ key: 'auth/a', body: Buffer.from('authorized') });
    assert.equal((await backend.head({ key: 'auth/a' })).etag, etag);
    assert.ok(proxy.requests.some((r) => r.url.startsWith('/v1/token')), 'the token service was asked');
    await backend.stop();
  });

  it('uses the Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS) when no keyFile is set', async () => {
    const saved = process.env.GOOGLE_APPLICATION_CREDENTIALS;
    process.env.GOOGLE_APPLICATION_CREDENTIALS = keyFile(goodSubject);
    try {
      // With projectId set the auth library does not look the project up (metadata server, Resource Manager): the
      // loopback guard of this file would refuse, and fail the run.
      const backend = backendWith({ projectId: 'wsd-test' });
      await backend.start();
      await backend.put({ key: 'auth/adc', body: Buffer.from('via ADC') });
      await backend.stop();
    } finally {
      if (saved === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
      else process.env.GOOGLE_APPLICATION_CREDENTIALS = saved;
    }
  });

  it('fails start with PERMISSION_DENIED naming the backend when the token service refuses the credentials', async () => {
    const error = await expectCode(backendWith({ keyFile: keyFile(`wrong-${randomBytes(8).toString('hex')}`) }).start(), 'PERMISSION_DENIED');
    assert.match(error.message, /^storage\/gcs: bucket "[^"]+" at http:\/\/127\.0\.0\.1:\d+: credentials refused: credentials could not be used: .*invalid_grant.*The subject token is invalid/);
    assertNoSecret(error.message);
  });

  it('fails start with PERMISSION_DENIED naming the backend when the storage API refuses the token', async () => {
    const error = await expectCode(backendWith({ keyFile: keyFile(revokedSubject) }).start(), 'PERMISSION_DENIED');
    assert.match(error.message, /^storage\/gcs: bucket "[^"]+" at http:\/\/127\.0\.0\.1:\d+: credentials refused: HTTP 401 authError: Invalid Credentials$/);
    assertNoSecret(error.message);
    assertNoSecret(JSON.stringify(error));
  });

  it('answers the storage health check from one cheap probe per interval, and reports a refused backend', async () => {
    const backend = backendWith({ keyFile: keyFile(goodSubject) });
    await backend.start();
    const from = proxy.requests.length;
    let now = 0;
    const check = new StorageHealthCheck(backend, { critical: true, intervalMs: 60_000, now: () => now });
    assert.deepEqual(await check.check(AbortSignal.timeout(10_000)), { status: 'ok' });
    now += 30_000;
    assert.deepEqual(await check.check(AbortSignal.timeout(10_000)), { status: 'ok' });
    const storageRequests = proxy.requests.slice(from).filter((r) => !r.url.startsWith('/v1/token'));
    assert.deepEqual(storageRequests.map((r) => r.method), ['POST', 'DELETE'], 'one single-request put and one delete for both checks');
    await backend.stop();
  });
});
