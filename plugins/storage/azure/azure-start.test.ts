import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  AccountSASPermissions,
  AccountSASResourceTypes,
  AccountSASServices,
  ContainerSASPermissions,
  StorageSharedKeyCredential,
  generateAccountSASQueryParameters,
  generateBlobSASQueryParameters,
} from '@azure/storage-blob';
import { patternStream } from '../../../test/kit/streams.js';
import { ConfigError } from '../../../core/config/config-error.js';
import { validateConfig } from '../../../core/config/load-config.js';
import { coreTokens } from '../../../core/kernel/core-tokens.js';
import { isWsdError, storageBackendToken, type WsdError } from '../../../core/plugin-api.js';
import { StorageHealthCheck } from '../../health/storage/storage-health-check.js';
import { builtinPlugins } from '../../builtins.js';
import { startTestKernel } from '../../../test/kit/start-test-kernel.js';
import { freePort } from '../../../test/kit/servers/server-process.js';
import { azuriteAccount, startAzurite, type AzuriteServer } from '../../../test/kit/servers/azurite.js';
import { tempDir } from '../../../test/kit/temp-dir.js';
import { azureConfigSchema, type AzureStorageConfigInput } from './azure-config.js';
import { AzureStorageBackend } from './azure-storage-backend.js';

const backendFor = (input: AzureStorageConfigInput, env: NodeJS.ProcessEnv = {}) =>
  new AzureStorageBackend(azureConfigSchema.parse(input), { env, retryDelayMs: 10 });

async function rejection(promise: Promise<unknown>): Promise<WsdError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isWsdError(error), `expected a WsdError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a rejection');
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

function secretFile(content: string): string {
  const file = path.join(tempDir('wsd-azure-secret-'), 'secret');
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

describe('storage/azure config', () => {
  it('names every bad setting with its full path', async () => {
    const raw = {
      storage: {
        plugin: 'azure',
        azure: {
          accountName: 'Not_An_Account',
          container: 'Bad_Container',
          blockSize: '1KiB',
          concurrency: 0,
          requestTimeout: 'soon',
          credentials: { accountKeyFile: 'a', sasTokenFile: 'b' },
          endpoint: 'ftp://example.com',
          colour: 'blue',
        },
      },
    };
    let issues: string[] = [];
    try {
      await validateConfig(raw, { builtins: builtinPlugins, coreTokens, source: 'test.yaml', baseDir: '/srv/wsd', env: {} });
      assert.fail('config was accepted');
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      issues = error.issues.map((i) => `${i.path}: ${i.message}`);
    }
    for (const field of ['accountName', 'container', 'blockSize', 'concurrency', 'requestTimeout', 'credentials', 'endpoint', 'colour']) {
      assert.ok(issues.some((issue) => issue.startsWith(`storage.azure.${field}: `)), `an issue names storage.azure.${field}: ${issues.join('\n')}`);
    }
    assert.ok(issues.includes('storage.azure.credentials: set at most one of accountKeyFile, sasTokenFile, connectionStringFile'));
  });

  it('needs a container when azure is the chosen backend, and credentials from somewhere', async () => {
    assert.throws(() => backendFor({ accountName: 'acct1' }), (error: unknown) => isWsdError(error, 'INVALID_ARGUMENT') && error.field === 'storage.azure.container');
    const none = await rejection(backendFor({ accountName: 'acct1', container: 'c1x' }).start());
    assert.equal(none.code, 'INVALID_ARGUMENT');
    assert.equal(none.field, 'storage.azure.credentials');
    assert.match(none.message, /AZURE_STORAGE_CONNECTION_STRING/);
    assert.match(none.message, /managed identity needs @azure\/identity/);
  });

  it('names a credentials file it cannot use without quoting it', async () => {
    const missing = await rejection(backendFor({ accountName: 'acct1', container: 'c1x', credentials: { accountKeyFile: '/no/such/key' } }).start());
    assert.equal(missing.field, 'storage.azure.credentials.accountKeyFile');
    assert.match(missing.message, /\/no\/such\/key: ENOENT/);
    const garbage = secretFile('hunter2 is not a key!\n');
    const bad = await rejection(backendFor({ accountName: 'acct1', container: 'c1x', credentials: { accountKeyFile: garbage } }).start());
    assert.equal(bad.field, 'storage.azure.credentials.accountKeyFile');
    assert.doesNotMatch(bad.message, /hunter2/);
    const notSas = await rejection(backendFor({ accountName: 'acct1', container: 'c1x', credentials: { sasTokenFile: secretFile('sv=2020&hunter2') } }).start());
    assert.match(notSas.message, /no sig= parameter/);
    assert.doesNotMatch(notSas.message, /hunter2/);
  });
});

describe('storage/azure start against Azurite', () => {
  let azurite: AzuriteServer;
  before(async () => {
    azurite = await startAzurite();
  });
  after(async () => {
    await azurite?.server.stop();
  });

  it('fails start() on a missing container, naming the backend, the container and createBucket', async () => {
    const backend = backendFor({ ...azurite.storageConfig, container: 'no-such-container' });
    const error = await rejection(backend.start());
    assert.equal(error.code, 'FAILED_PRECONDITION');
    assert.match(error.message, /^storage\/azure: container "no-such-container" does not exist at http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1 \(404 ContainerNotFound; account key from .*\); create it, or set createBucket: true$/);
    assert.equal(await azurite.service.getContainerClient('no-such-container').exists(), false, 'nothing was created');
  });

  it('creates the container with createBucket: true', async () => {
    const backend = backendFor({ ...azurite.storageConfig, container: 'made-by-wsd', createBucket: true });
    await backend.start();
    assert.equal(await azurite.service.getContainerClient('made-by-wsd').exists(), true);
    await backend.put({ key: 'x', body: Buffer.from('in the new container') });
    await backend.stop();
  });

  it('fails start() with PERMISSION_DENIED naming the backend when the key is wrong, without the key in the text', async () => {
    const wrongKey = Buffer.alloc(64, 7).toString('base64');
    const backend = backendFor({ ...azurite.storageConfig, credentials: { accountKeyFile: secretFile(wrongKey) } });
    const error = await rejection(backend.start());
    assert.equal(error.code, 'PERMISSION_DENIED');
    assert.match(error.message, /^storage\/azure: cannot use container ".*" at http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1 \(account key from .*\): credentials refused/);
    assert.match(error.message, /403/);
    for (const secret of [wrongKey, azuriteAccount.key]) assert.ok(!error.message.includes(secret), 'no key in the message');
  });

  it('works with a SAS token from a file and keeps the token out of every message', async () => {
    const sas = generateAccountSASQueryParameters(
      {
        expiresOn: new Date(Date.now() + 3600_000),
        permissions: AccountSASPermissions.parse('rwdlc'),
        resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
        services: AccountSASServices.parse('b').toString(),
      },
      new StorageSharedKeyCredential(azuriteAccount.name, azuriteAccount.key),
    ).toString();
    const backend = backendFor({ endpoint: azurite.storageConfig.endpoint, container: azurite.storageConfig.container, credentials: { sasTokenFile: secretFile(`?${sas}\n`) } });
    await backend.start();
    const { etag } = await backend.put({ key: 'sas/one', body: Buffer.from('via sas') });
    assert.equal((await backend.head({ key: 'sas/one' })).etag, etag);
    const missing = await rejection(backend.get({ key: 'sas/missing' }));
    assert.equal(missing.code, 'NOT_FOUND');
    const signature = new URLSearchParams(sas).get('sig')!;
    assert.ok(!missing.message.includes(signature) && !missing.message.includes('sig='), missing.message);
    await backend.delete({ key: 'sas/one' });
    await backend.stop();
  });

  it('needs no more than a container SAS with read, write, delete and list (the README says so)', async () => {
    const containerSas = (permissions: string) =>
      generateBlobSASQueryParameters(
        { containerName: azurite.storageConfig.container, permissions: ContainerSASPermissions.parse(permissions), expiresOn: new Date(Date.now() + 3600_000) },
        new StorageSharedKeyCredential(azuriteAccount.name, azuriteAccount.key),
      ).toString();
    const config = { endpoint: azurite.storageConfig.endpoint, container: azurite.storageConfig.container, abortUploadsOlderThan: 0 };
    const backend = backendFor({ ...config, blockSize: '256KiB', credentials: { sasTokenFile: secretFile(containerSas('rwdl')) } });
    await backend.start();
    const created = await backend.put({ key: 'rwdl/big', body: patternStream(700 * 1024, 1), ifNoneMatch: true });
    await backend.put({ key: 'rwdl/big', body: Buffer.from('small'), ifMatch: created.etag });
    assert.deepEqual((await collect(backend.list({ prefix: 'rwdl/' }))).map((o) => o.key), ['rwdl/big']);
    const failing = (async function* () {
      yield Buffer.alloc(600 * 1024, 1);
      throw new Error('broken source');
    })();
    await rejection(backend.put({ key: 'rwdl/broken', body: Readable.from(failing) }));
    assert.equal(await backend.discardAbandonedUploads(new Date(Date.now() + 60_000)), 0, 'the failed put removed its own blocks');
    await backend.delete({ key: 'rwdl/big' });

    const noList = await rejection(backendFor({ ...config, credentials: { sasTokenFile: secretFile(containerSas('rwd')) } }).start());
    assert.equal(noList.code, 'PERMISSION_DENIED');
  });

  it('works with a connection string from a file or the environment, and with AZURE_STORAGE_KEY', async () => {
    const connectionString = `DefaultEndpointsProtocol=http;AccountName=${azuriteAccount.name};AccountKey=${azuriteAccount.key};BlobEndpoint=${azurite.accountUrl};`;
    const fromFile = backendFor({ container: azurite.storageConfig.container, credentials: { connectionStringFile: secretFile(connectionString) } });
    await fromFile.start();
    await fromFile.put({ key: 'cs/file', body: Buffer.from('1') });
    const fromEnv = backendFor({ container: azurite.storageConfig.container }, { AZURE_STORAGE_CONNECTION_STRING: connectionString });
    await fromEnv.start();
    assert.equal((await fromEnv.head({ key: 'cs/file' })).size, 1);
    const keyFromEnv = backendFor({ accountName: azuriteAccount.name, endpoint: azurite.accountUrl, container: azurite.storageConfig.container }, { AZURE_STORAGE_KEY: azuriteAccount.key });
    await keyFromEnv.start();
    assert.equal((await keyFromEnv.head({ key: 'cs/file' })).size, 1);
    const both = await rejection(backendFor({ endpoint: azurite.accountUrl, container: 'c1x', credentials: { connectionStringFile: secretFile(connectionString) } }).start());
    assert.equal(both.field, 'storage.azure.endpoint');
    assert.ok(!both.message.includes(azuriteAccount.key));
  });

  it('fails start() with UNAVAILABLE when the endpoint does not answer', async () => {
    const port = await freePort();
    const backend = backendFor({ ...azurite.storageConfig, endpoint: `http://127.0.0.1:${port}/devstoreaccount1`, retries: 1 });
    const error = await rejection(backend.start());
    assert.equal(error.code, 'UNAVAILABLE');
    assert.match(error.message, new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}/devstoreaccount1: .*ECONNREFUSED`));
  });

  it('reports a container deleted after start through the storage health check, naming it', async () => {
    const container = 'deleted-later';
    await azurite.service.getContainerClient(container).create();
    const backend = backendFor({ ...azurite.storageConfig, container, abortUploadsOlderThan: 0 });
    await backend.start();
    const check = new StorageHealthCheck(backend, { critical: true, intervalMs: 0 });
    assert.deepEqual(await check.check(AbortSignal.timeout(10_000)), { status: 'ok' });
    await azurite.service.getContainerClient(container).delete();
    const result = await check.check(AbortSignal.timeout(10_000));
    assert.equal(result.status, 'failing');
    assert.match(result.reason ?? '', /storage\/azure put "wsd-health\/.*": container "deleted-later" does not exist/);
  });

  it('is the daemon storage when configured so, and a wrong key fails the kernel start naming the backend', async () => {
    const good = await startTestKernel({ config: { storage: { plugin: 'azure', azure: azurite.storageConfig } } });
    try {
      const storage = good.kernel.get(storageBackendToken);
      await storage.put({ key: 'kernel/k', body: Buffer.from('through the kernel') });
      assert.equal((await azurite.service.getContainerClient(azurite.storageConfig.container).getBlobClient('kernel/k').getProperties()).contentLength, 18);
    } finally {
      await good.stop();
    }
    const wrong = { ...azurite.storageConfig, credentials: { accountKeyFile: secretFile(Buffer.alloc(64, 9).toString('base64')) } };
    await assert.rejects(startTestKernel({ config: { storage: { plugin: 'azure', azure: wrong } } }), (error: unknown) => {
      assert.match((error as Error).message, /storage\/azure.*credentials refused/);
      return true;
    });
  });
});
