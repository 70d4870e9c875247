import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { isWsdError, type WsdError } from '../../../core/plugin-api.js';
import { until } from '../../../test/kit/polling.js';
import { startAzurite, type AzuriteServer } from '../../../test/kit/servers/azurite.js';
import { startHttpFaultProxy, type HttpFaultProxy } from '../../../test/kit/servers/http-fault-proxy.js';
import { patternStream, sha256Of } from '../../../test/kit/streams.js';
import { azureConfigSchema } from './azure-config.js';
import { AzureStorageBackend } from './azure-storage-backend.js';

// The trap of Azure's staged blocks: a large put uploads its blocks first and makes the blob in one last request
// (Put Block List). A condition checked anywhere but on that request protects nothing: the key can be created or
// replaced while the blocks upload. These tests change the key in that window, with real Azurite.

const kib = 1024;

async function rejection(promise: Promise<unknown>): Promise<WsdError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isWsdError(error), `expected a WsdError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a rejection');
}

/** `firstBytes` of the pattern, then waits for `open()`; `fail` makes it break there instead of going on. */
function gatedBody(size: number, seed: number, firstBytes: number) {
  let release!: (how: 'go' | 'fail') => void;
  const gate = new Promise<'go' | 'fail'>((resolve) => (release = resolve));
  async function* chunks() {
    let sent = 0;
    for await (const chunk of patternStream(size, seed)) {
      if (sent >= firstBytes && (await gate) === 'fail') throw new Error('the source broke');
      sent += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
  }
  return { body: Readable.from(chunks()), open: () => release('go'), fail: () => release('fail') };
}

describe('storage/azure staged blocks and conditions on Put Block List', () => {
  let azurite: AzuriteServer;
  let proxy: HttpFaultProxy;
  let backend: AzureStorageBackend;
  before(async () => {
    azurite = await startAzurite();
    proxy = await startHttpFaultProxy(azurite.server.endpoint, () => undefined);
    backend = new AzureStorageBackend(
      azureConfigSchema.parse({ ...azurite.storageConfig, endpoint: `${proxy.endpoint}/devstoreaccount1`, blockSize: '256KiB', concurrency: 2, abortUploadsOlderThan: 0 }),
      { retryDelayMs: 20 },
    );
    await backend.start();
  });
  after(async () => {
    await backend?.stop();
    await proxy?.close();
    await azurite?.server.stop();
  });

  const blob = (key: string) => azurite.service.getContainerClient(azurite.storageConfig.container).getBlockBlobClient(key);
  const uncommitted = async (key: string) => (await blob(key).getBlockList('uncommitted').catch(() => ({ uncommittedBlocks: [] }))).uncommittedBlocks?.length ?? 0;
  const requestsFor = (key: string, from: number) => proxy.requests.slice(from).filter((r) => r.method === 'PUT' && decodeURIComponent(r.url).includes(key));

  it('refuses a large ifNoneMatch put when the key is created while its blocks upload, with the condition on the commit only', async () => {
    const key = 'trap/create.bin';
    const from = proxy.requests.length;
    const upload = gatedBody(2 * 1024 * kib, 1, 600 * kib);
    const put = backend.put({ key, body: upload.body, ifNoneMatch: true });
    await until(async () => (await uncommitted(key)) >= 2, 'two blocks staged');
    const other = await blob(key).upload('created meanwhile', 17);
    upload.open();
    const error = await rejection(put);
    assert.equal(error.code, 'ALREADY_EXISTS', error.message);
    assert.equal((await backend.head({ key })).etag, `${other.etag}`, "the other writer's object is untouched");

    const puts = requestsFor(key, from);
    const commits = puts.filter((r) => r.url.includes('comp=blocklist'));
    const stages = puts.filter((r) => r.url.includes('comp=block&'));
    assert.equal(commits.length, 1);
    assert.equal(commits[0]!.headers['if-none-match'], '*', 'the commit carries If-None-Match: *');
    assert.ok(stages.length >= 2 && stages.every((r) => r.headers['if-none-match'] === undefined), 'staging is unconditional');
  });

  it('refuses a large ifMatch put when the object is replaced while its blocks upload', async () => {
    const key = 'trap/replace.bin';
    const base = await backend.put({ key, body: Buffer.from('base') });
    const from = proxy.requests.length;
    const upload = gatedBody(2 * 1024 * kib, 2, 600 * kib);
    const put = backend.put({ key, body: upload.body, ifMatch: base.etag });
    await until(async () => (await uncommitted(key)) >= 2, 'two blocks staged');
    await blob(key).upload('replaced meanwhile', 18);
    upload.open();
    const error = await rejection(put);
    assert.equal(error.code, 'FAILED_PRECONDITION', error.message);
    const got = await backend.get({ key });
    assert.equal((await sha256Of(got.body)).size, 18, 'the replacement is what is stored');
    const commit = requestsFor(key, from).find((r) => r.url.includes('comp=blocklist'))!;
    assert.equal(commit.headers['if-match'], base.etag, 'the commit carries If-Match: <etag>');
  });

  it('removes the staged blocks of a failed put of a new key, and leaves those on an existing blob to its next commit', async () => {
    const fresh = 'trap/broken-new.bin';
    const upload = gatedBody(2 * 1024 * kib, 3, 600 * kib);
    const put = backend.put({ key: fresh, body: upload.body });
    await until(async () => (await uncommitted(fresh)) >= 2, 'two blocks staged');
    upload.fail();
    const error = await rejection(put);
    assert.equal(error.code, 'INTERNAL');
    assert.match(error.message, /reading the body failed: the source broke/);
    await assert.rejects(blob(fresh).getBlockList('all'), (e: { statusCode?: number }) => e.statusCode === 404, 'no blocks and no blob are left');

    const existing = 'trap/broken-existing.bin';
    const kept = await backend.put({ key: existing, body: Buffer.from('kept') });
    const again = gatedBody(2 * 1024 * kib, 4, 600 * kib);
    const put2 = backend.put({ key: existing, body: again.body });
    await until(async () => (await uncommitted(existing)) >= 2, 'two blocks staged');
    again.fail();
    await rejection(put2);
    assert.equal((await backend.head({ key: existing })).etag, kept.etag);
    assert.ok((await uncommitted(existing)) >= 2, 'blocks staged onto an existing blob cannot be dropped without a commit');
    await backend.put({ key: existing, body: patternStream(600 * kib, 5) });
    assert.equal(await uncommitted(existing), 0, 'the next commit drops them');
  });

  it("does not remove another writer's staged blocks when its own put of the same new key fails", async () => {
    const key = 'trap/two-writers.bin';
    const failing = gatedBody(2 * 1024 * kib, 6, 600 * kib);
    const winning = gatedBody(2 * 1024 * kib, 7, 600 * kib);
    const lose = backend.put({ key, body: failing.body });
    const win = backend.put({ key, body: winning.body, ifNoneMatch: true });
    await until(async () => (await uncommitted(key)) >= 4, 'both writers staged two blocks');
    failing.fail();
    await rejection(lose);
    assert.ok((await uncommitted(key)) >= 2, "the other writer's blocks are still there");
    winning.open();
    const won = await win;
    assert.equal((await backend.head({ key })).etag, won.etag);
    assert.deepEqual(await sha256Of((await backend.get({ key })).body), await sha256Of(patternStream(2 * 1024 * kib, 7)));
  });

  it('fails the slower of two unconditional large puts of one key with UNAVAILABLE: the first commit drops its blocks', async () => {
    const key = 'trap/two-unconditional.bin';
    const first = gatedBody(1024 * kib, 8, 600 * kib);
    const second = gatedBody(1024 * kib, 9, 600 * kib);
    const a = backend.put({ key, body: first.body });
    const b = backend.put({ key, body: second.body });
    await until(async () => (await uncommitted(key)) >= 4, 'both writers staged two blocks');
    first.open();
    const done = await a;
    second.open();
    const error = await rejection(b);
    assert.equal(error.code, 'UNAVAILABLE');
    assert.match(error.message, /a concurrent put of the same key committed first and discarded the blocks this put had staged; put again/);
    assert.equal((await backend.head({ key })).etag, done.etag);
  });
});
