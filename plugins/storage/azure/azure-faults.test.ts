import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { isWsdError, type StorageBackend, type WsdError } from '../../../core/plugin-api.js';
import { until } from '../../../test/kit/polling.js';
import { startAzurite, type AzuriteServer } from '../../../test/kit/servers/azurite.js';
import { startHttpFaultProxy, type FaultDecision, type HttpFaultProxy, type ProxiedRequest } from '../../../test/kit/servers/http-fault-proxy.js';
import { patternStream, sha256Of } from '../../../test/kit/streams.js';
import { azureConfigSchema, type AzureStorageConfigInput } from './azure-config.js';
import { AzureStorageBackend } from './azure-storage-backend.js';

const mib = 1024 * 1024;

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

async function text(backend: StorageBackend, key: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of (await backend.get({ key })).body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

/** `bytes` of the pattern, then waits for `open()` before the rest: a put that is midway for as long as a test needs. */
function gatedBody(size: number, seed: number, firstBytes: number) {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  async function* chunks() {
    let sent = 0;
    for await (const chunk of patternStream(size, seed)) {
      if (sent >= firstBytes) await gate;
      sent += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
  }
  return { body: Readable.from(chunks()), open: release };
}

const backendOn = async (azurite: AzuriteServer, overrides: Partial<AzureStorageConfigInput> = {}, endpoint?: string) => {
  const backend = new AzureStorageBackend(
    azureConfigSchema.parse({ ...azurite.storageConfig, ...(endpoint ? { endpoint: `${endpoint}/devstoreaccount1` } : {}), abortUploadsOlderThan: 0, ...overrides }),
    { retryDelayMs: 20 },
  );
  await backend.start();
  return backend;
};

/** Azurite keeps its metadata in a LokiJS file it saves every few seconds: wait until `name` is in it before a SIGKILL. */
async function persisted(azurite: AzuriteServer, name: string): Promise<void> {
  const db = path.join(azurite.dataDir, '__azurite_db_blob__.json');
  await until(async () => (await readFile(db, 'utf8').catch(() => '')).includes(name), `Azurite saved ${name} to ${db}`, 30_000);
}

describe('storage/azure when Azurite is killed in the middle of a large put', () => {
  let azurite: AzuriteServer;
  before(async () => {
    azurite = await startAzurite();
  });
  after(async () => {
    await azurite?.server.stop();
  });

  it('fails the put with UNAVAILABLE, keeps the previous version, and leaves nothing a reader can see', async () => {
    const backend = await backendOn(azurite, { blockSize: '1MiB', concurrency: 2, retries: 2, requestTimeout: '5s' });
    const key = 'fault/kill/object.bin';
    const fresh = 'fault/kill/new-object.bin';
    const previous = await backend.put({ key, body: patternStream(3 * mib + 5, 1) });
    const previousDigest = await sha256Of((await backend.get({ key })).body);
    const blocks = azurite.service.getContainerClient(azurite.storageConfig.container);
    await persisted(azurite, key);

    // Two large puts midway: a new version of `key`, and a key that does not exist yet.
    const replacing = gatedBody(32 * mib, 2, 6 * mib);
    const creating = gatedBody(32 * mib, 3, 6 * mib);
    const replace = backend.put({ key, body: replacing.body });
    const create = backend.put({ key: fresh, body: creating.body, ifNoneMatch: true });
    const staged = async (name: string) => (await blocks.getBlockBlobClient(name).getBlockList('uncommitted').catch(() => ({ uncommittedBlocks: [] }))).uncommittedBlocks?.length ?? 0;
    await until(async () => (await staged(key)) >= 4 && (await staged(fresh)) >= 4, 'both puts staged 4 blocks', 30_000);
    await persisted(azurite, fresh);

    await azurite.server.kill();
    replacing.open();
    creating.open();
    for (const outcome of await Promise.allSettled([replace, create])) {
      assert.equal(outcome.status, 'rejected');
      const error = (outcome as PromiseRejectedResult).reason as WsdError;
      assert.ok(isWsdError(error, 'UNAVAILABLE'), String(error));
      assert.match(error.message, /^storage\/azure put "fault\/kill\/.*": (block \d+: )?cannot reach http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1: .*ECONNREFUSED/);
    }

    azurite = await startAzurite({ port: azurite.server.port, dataDir: azurite.dataDir, container: azurite.storageConfig.container });
    assert.equal((await backend.head({ key })).etag, previous.etag, 'the previous version is the current one');
    assert.deepEqual(await sha256Of((await backend.get({ key })).body), previousDigest);
    await rejection(backend.head({ key: fresh })).then((error) => assert.equal(error.code, 'NOT_FOUND'));
    assert.deepEqual((await collect(backend.list({ prefix: 'fault/kill/' }))).map((o) => o.key), [key], 'no half object is listed');

    // What Azure keeps of the two puts: uncommitted blocks, invisible to readers. Those of the new key are removed by
    // the sweep of the next start (a daemon restart; here with a cutoff of 1 ms instead of 24 h); those on the
    // existing blob go with its next commit.
    assert.ok((await staged(fresh)) >= 4, 'the new key holds the staged blocks the dead server could not be asked to drop');
    const restarted = await backendOn(azurite, { abortUploadsOlderThan: '1ms' });
    assert.equal(await restarted.abandonedUploadsDiscarded, 1);
    await restarted.stop();
    await assert.rejects(blocks.getBlockBlobClient(fresh).getBlockList('all'), (error: { statusCode?: number }) => error.statusCode === 404);
    assert.equal((await backend.head({ key })).etag, previous.etag, 'the sweep never touches a committed blob');
    const leftOnExisting = await staged(key);
    // A staged put commits a block list, which drops every uncommitted block not in it (Azurite's single Put Blob
    // keeps them, so a staged one is used here).
    const next = await backend.put({ key, body: patternStream(2 * mib + 1, 5) });
    assert.equal(await staged(key), 0, `the next commit discarded the ${leftOnExisting} blocks left on the existing blob`);
    assert.equal((await backend.head({ key })).etag, next.etag);
  });
});

describe('storage/azure retries', () => {
  let azurite: AzuriteServer;
  let proxy: HttpFaultProxy | undefined;
  let rule: (request: ProxiedRequest) => FaultDecision = () => undefined;
  before(async () => {
    azurite = await startAzurite();
    proxy = await startHttpFaultProxy(azurite.server.endpoint, (request) => rule(request));
  });
  after(async () => {
    await proxy?.close();
    await azurite?.server.stop();
  });
  const through = (overrides: Partial<AzureStorageConfigInput> = {}) => backendOn(azurite, { retries: 3, ...overrides }, proxy!.endpoint);
  const since = (from: number) => proxy!.requests.slice(from).map((r) => `${r.method} ${r.fault}`);

  it('retries a transient 503 and succeeds', async () => {
    const backend = await through();
    const from = proxy!.requests.length;
    let failures = 2;
    rule = () => (failures-- > 0 ? { answer: 503 } : undefined);
    const { etag } = await backend.put({ key: 'retry/503', body: Buffer.from('after two 503s') });
    rule = () => undefined;
    assert.deepEqual(since(from), ['PUT answered 503', 'PUT answered 503', 'PUT forwarded']);
    assert.equal((await backend.head({ key: 'retry/503' })).etag, etag);
  });

  it('gives up after `retries` retries with UNAVAILABLE', async () => {
    const backend = await through({ retries: 2 });
    const from = proxy!.requests.length;
    rule = () => ({ answer: 503 });
    const error = await rejection(backend.head({ key: 'retry/always-busy' }));
    rule = () => undefined;
    assert.equal(error.code, 'UNAVAILABLE');
    assert.match(error.message, /answered 503/);
    assert.equal(proxy!.requests.length - from, 3, 'one try and two retries');
  });

  it('does not retry a permanent 403', async () => {
    const backend = await through();
    const from = proxy!.requests.length;
    rule = () => ({ answer: 403 });
    const error = await rejection(backend.put({ key: 'retry/403', body: Buffer.from('x') }));
    rule = () => undefined;
    assert.equal(error.code, 'PERMISSION_DENIED');
    assert.match(error.message, /^storage\/azure put "retry\/403": credentials refused by .*\(403 AuthorizationFailure\)$/);
    assert.deepEqual(since(from), ['PUT answered 403']);
  });

  it('retries a request that gets no answer within requestTimeout', async () => {
    const backend = await through({ requestTimeout: '1s' });
    await backend.put({ key: 'retry/stall', body: Buffer.from('patience') });
    const from = proxy!.requests.length;
    let stalls = 1;
    rule = () => (stalls-- > 0 ? { stall: true } : undefined);
    assert.equal((await backend.head({ key: 'retry/stall' })).size, 8);
    rule = () => undefined;
    assert.deepEqual(since(from), ['HEAD stalled', 'HEAD forwarded']);
  });

  it('resumes a download cut midway at the same version, and fails it when the object was replaced meanwhile', async () => {
    const backend = await through();
    const key = 'retry/download.bin';
    await backend.put({ key, body: patternStream(3 * mib, 7) });
    const expected = await sha256Of(patternStream(3 * mib, 7));
    const from = proxy!.requests.length;
    let cuts = 1;
    rule = (r) => (r.method === 'GET' && cuts-- > 0 ? { cutAfter: mib } : undefined);
    assert.deepEqual(await sha256Of((await backend.get({ key })).body), expected);
    assert.deepEqual(since(from), [`GET cut after ${mib} bytes`, 'GET forwarded']);
    const resumed = proxy!.requests.at(-1)!;
    assert.equal(resumed.headers['x-ms-range'] ?? resumed.headers.range, `bytes=${mib}-${3 * mib - 1}`);
    assert.ok(resumed.headers['if-match'], 'the rest is asked for with If-Match');

    cuts = 1;
    rule = (r) =>
      r.method === 'GET' && cuts-- > 0
        ? { cutAfter: mib, before: async () => void (await azurite.service.getContainerClient(azurite.storageConfig.container).getBlockBlobClient(key).upload('replaced', 8)) }
        : undefined;
    const got = await backend.get({ key });
    const error = await rejection(sha256Of(got.body));
    rule = () => undefined;
    assert.equal(error.code, 'FAILED_PRECONDITION');
    assert.match(error.message, /replaced or deleted while it was being read/);
  });

  it('does not report a refusal for a conditional put whose answer was lost after it succeeded', async () => {
    const backend = await through({ blockSize: '256KiB' });
    const from = proxy!.requests.length;
    let lost = 1;
    // The commit of the staged blocks reaches Azurite and succeeds; the client sees a 500 instead.
    rule = (r) => (r.method === 'PUT' && r.url.includes('comp=blocklist') && lost-- > 0 ? { forwardThen: 500 } : undefined);
    const key = 'retry/lost-commit.bin';
    const result = await backend.put({ key, body: patternStream(mib, 4), ifNoneMatch: true });
    rule = () => undefined;
    const commits = since(from).filter((r) => r.startsWith('PUT') && !r.includes('block '));
    assert.equal(proxy!.requests.slice(from).filter((r) => r.url.includes('comp=blocklist')).length, 2, 'the commit was tried again');
    assert.ok(commits.length > 0);
    assert.equal((await backend.head({ key })).etag, result.etag, "the put reports the version it made (found by its put id)");
    assert.deepEqual(await sha256Of((await backend.get({ key })).body), await sha256Of(patternStream(mib, 4)));

    // The same with a single Put Blob whose connection drops after the service stored it.
    lost = 1;
    rule = (r) => (r.method === 'PUT' && !r.url.includes('comp=') && lost-- > 0 ? { forwardThen: 'drop' } : undefined);
    const small = await backend.put({ key: 'retry/lost-put.txt', body: Buffer.from('v1'), ifNoneMatch: true });
    rule = () => undefined;
    assert.equal((await backend.head({ key: 'retry/lost-put.txt' })).etag, small.etag);
    const replaced = await backend.put({ key: 'retry/lost-put.txt', body: Buffer.from('v2'), ifMatch: small.etag });
    assert.equal(await text(backend, 'retry/lost-put.txt'), 'v2');
    assert.notEqual(replaced.etag, small.etag);
  });

  it('reports UNAVAILABLE, not a refusal, when a lost answer and another writer make the outcome unknowable', async () => {
    const backend = await through();
    const key = 'retry/lost-and-overtaken.txt';
    const base = await backend.put({ key, body: Buffer.from('base') });
    let lost = 1;
    rule = (r) =>
      r.method === 'PUT' && lost-- > 0
        ? {
            forwardThen: 500,
            // Another writer replaces the object after this put landed and before its retry.
            before: async () => void (await azurite.service.getContainerClient(azurite.storageConfig.container).getBlockBlobClient(key).upload('other writer', 12)),
          }
        : undefined;
    const error = await rejection(backend.put({ key, body: Buffer.from('mine'), ifMatch: base.etag }));
    rule = () => undefined;
    assert.equal(error.code, 'UNAVAILABLE');
    assert.match(error.message, /whether this put happened before it is unknown: read the object again/);
    assert.equal(await text(backend, key), 'other writer');
  });
});
