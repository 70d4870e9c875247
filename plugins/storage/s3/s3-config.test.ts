import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../core/config/config-error.js';
import { validateConfig } from '../../../core/config/load-config.js';
import { coreTokens } from '../../../core/kernel/core-tokens.js';
import { builtinPlugins } from '../../builtins.js';
import { endpointOf } from './s3-config.js';
import { s3Config } from '../../../test/kit/storage-s3/s3-test-setup.js';

const base = { builtins: builtinPlugins, coreTokens, source: 'wsd.yaml', baseDir: '/etc/wsd', env: {} };

async function issuesOf(s3: unknown): Promise<string[]> {
  try {
    await validateConfig({ storage: { plugin: 's3', s3 } }, base);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail('config was accepted');
}

describe('storage/s3 config', () => {
  it('takes a minimal config and fills in the defaults', async () => {
    const config = await validateConfig({ storage: { plugin: 's3', s3: { bucket: 'wsd-backups' } } }, base);
    assert.deepEqual(config.pluginConfigs.get('storage/s3'), {
      region: 'us-east-1',
      bucket: 'wsd-backups',
      prefix: '',
      credentials: { source: 'auto' },
      partSize: 16 * 1024 * 1024,
      concurrency: 4,
      requestTimeout: 30_000,
      retry: { attempts: 5, initialDelay: 200, maxDelay: 10_000 },
      createBucket: false,
      abortUploadsOlderThan: 24 * 3600_000,
    });
  });

  it('names the path of every bad setting', async () => {
    assert.deepEqual(await issuesOf({}), ['storage.s3.bucket: Invalid input: expected string, received undefined']);
    const issues = await issuesOf({
      bucket: 'Not_A_Bucket',
      endpoint: 'ftp://user:pw@example.com/path',
      partSize: '1MiB',
      concurrency: 0,
      requestTimeout: 'soon',
      region: 'EU Central',
      prefix: '/leading',
      credentials: { source: 'files', accessKeyIdFile: '/run/secrets/id' },
      caFile: '',
      retry: { attempts: 0 },
      colour: 'blue',
    });
    const paths = issues.map((i) => i.slice(0, i.indexOf(':')));
    for (const path of [
      'storage.s3.bucket',
      'storage.s3.endpoint',
      'storage.s3.partSize',
      'storage.s3.concurrency',
      'storage.s3.requestTimeout',
      'storage.s3.region',
      'storage.s3.prefix',
      'storage.s3.credentials.secretAccessKeyFile',
      'storage.s3.caFile',
      'storage.s3.retry.attempts',
      'storage.s3.colour',
    ]) {
      assert.ok(paths.includes(path), `an issue at ${path}: ${JSON.stringify(issues, null, 1)}`);
    }
    assert.ok(issues.some((i) => /storage\.s3\.endpoint: must be an http:\/\/ or https:\/\/ URL/.test(i)));
    assert.ok(issues.some((i) => /storage\.s3\.endpoint: must not contain credentials/.test(i)));
    assert.ok(issues.some((i) => /storage\.s3\.partSize: must be between 5MiB and 5GiB/.test(i)));
    assert.ok(issues.includes('storage.s3.colour: unknown key'), 'unknown keys are refused');
    assert.deepEqual(await issuesOf({ bucket: 'ok-bucket', credentials: { source: 'keychain' } }).then((i) => i.map((x) => x.split(':')[0])), ['storage.s3.credentials.source']);
    assert.deepEqual(await issuesOf({ bucket: 'ok-bucket', credentials: { source: 'env', accessKeyIdFile: '/x' } }).then((i) => i.map((x) => x.split(':')[0])), ['storage.s3.credentials.accessKeyIdFile'], 'a key another source takes is unknown here');
  });

  it('never takes keys inline', async () => {
    const issues = await issuesOf({ bucket: 'ok-bucket', credentials: { source: 'files', accessKeyId: 'AKIA…', secretAccessKey: 'shh' } });
    assert.ok(issues.some((i) => i.startsWith('storage.s3.credentials')), JSON.stringify(issues));
  });

  it('derives the endpoint, port, TLS and addressing', () => {
    assert.deepEqual(endpointOf(s3Config({ bucket: 'bkt', region: 'eu-central-1' })), {
      url: 'https://s3.eu-central-1.amazonaws.com',
      host: 's3.eu-central-1.amazonaws.com',
      port: 443,
      useSSL: true,
      pathStyle: false,
    });
    assert.deepEqual(endpointOf(s3Config({ bucket: 'bkt', endpoint: 'http://127.0.0.1:9000' })), {
      url: 'http://127.0.0.1:9000',
      host: '127.0.0.1',
      port: 9000,
      useSSL: false,
      pathStyle: true,
    });
    assert.equal(endpointOf(s3Config({ bucket: 'bkt', endpoint: 'https://minio.example.com', pathStyle: false })).pathStyle, false);
    assert.equal(endpointOf(s3Config({ bucket: 'bkt', endpoint: 'https://minio.example.com' })).port, 443);
  });
});
