import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { after, describe, it } from 'node:test';
import { isWsdError } from '../../../core/plugin-api.js';
import { guardLoopback } from '../../../test/kit/loopback-guard.js';
import { startFakeGcs, type FakeGcs } from '../../../test/kit/servers/fake-gcs.js';
import { patternStream, sha256Of } from '../../../test/kit/streams.js';
import { GcsStorageBackend } from './gcs-storage-backend.js';

const guard = guardLoopback();
after(() => assert.deepEqual(guard.violations, [], 'no connection left 127.0.0.1'));

const mib = 1024 * 1024;

/** Every file under `dir`, relative. */
function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

describe('storage/gcs: the server dies in the middle of a large put (fake-gcs-server, filesystem backend)', () => {
  const started: FakeGcs[] = [];
  after(async () => {
    for (const gcs of started) await gcs.server.stop();
  });

  it('fails the put with UNAVAILABLE; after a restart the previous version is intact and nothing of the put remains', async () => {
    const gcs = await startFakeGcs();
    started.push(gcs);
    const backend = new GcsStorageBackend({ ...gcs.storageConfig, retries: 2, retryDelayMs: 50 });
    await backend.start();
    const key = 'alice/workspaces/ws-1/backups/full.tar';
    // The previous backup is itself a resumable upload (larger than one 32 MiB chunk).
    const previous = await backend.put({ key, body: patternStream(40 * mib + 7, 1) });
    const before = files(path.join(gcs.dataDir, gcs.bucket));

    // The server is killed once the second chunk is on its way (the body has been read into the third).
    let read = 0;
    let killed: Promise<void> | undefined;
    const counting = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        read += chunk.length;
        if (read > 70 * mib && !killed) killed = gcs.server.kill();
        done(null, chunk);
      },
    });
    const put = backend.put({ key, body: patternStream(200 * mib, 2).pipe(counting) });
    await assert.rejects(put, (error: unknown) => {
      assert.ok(isWsdError(error), String(error));
      assert.equal(error.code, 'UNAVAILABLE', error.message);
      assert.match(error.message, /^storage\/gcs: put "alice\/workspaces\/ws-1\/backups\/full\.tar": .*(unreachable|ECONNRESET|socket hang up)/);
      return true;
    });
    assert.ok(killed, 'the server was killed during the put');
    await killed;
    await backend.stop();

    const restarted = await startFakeGcs({ dataDir: gcs.dataDir, port: gcs.server.port, bucket: gcs.bucket });
    started.push(restarted);
    const after = new GcsStorageBackend(restarted.storageConfig);
    await after.start();
    const got = await after.get({ key });
    assert.equal(got.etag, previous.etag, 'the previous version is the current one');
    assert.deepEqual(await sha256Of(got.body), await sha256Of(patternStream(40 * mib + 7, 1)));
    const listed = [];
    for await (const o of after.list({ prefix: '' })) listed.push([o.key, o.etag]);
    assert.deepEqual(listed, [[key, previous.etag]], 'no half object is listed');
    // Upload sessions live in the server's memory until their final chunk: nothing of the put reached the disk.
    assert.deepEqual(files(path.join(gcs.dataDir, gcs.bucket)), before);
    await after.stop();
  });
});
