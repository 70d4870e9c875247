import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WsdError } from '../../../core/errors.js';
import { initializerRun } from '../../../test/kit/initializer-options.js';
import { DownloadContentInitializer, type DownloadSpec } from './download-content-initializer.js';

const sha = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;

describe('initializer/download', () => {
  let server: Server;
  let base: string;
  let failures = 0;
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/flaky' && failures-- > 0) return void res.writeHead(503).end();
      if (req.url === '/missing') return void res.writeHead(404).end();
      res.writeHead(200).end(`content of ${req.url}`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const download = (spec: DownloadSpec) => {
    const run = initializerRun(spec);
    return { run, result: new DownloadContentInitializer({ attempts: 3, initialRetryDelayMs: 20 }).initialize(run.options) };
  };

  it('downloads files under the target location and checks their digests', async () => {
    const { run, result } = download({
      target_location: 'assets',
      files: [
        { url: `${base}/a.txt`, file_path: 'a.txt', digest: sha('content of /a.txt') },
        { url: `${base}/deep/b.bin`, file_path: 'x/y/b.bin', digest: sha('content of /deep/b.bin') },
      ],
    });
    const { stats } = await result;
    assert.equal(readFileSync(path.join(run.dir, 'assets', 'a.txt'), 'utf8'), 'content of /a.txt');
    assert.equal(readFileSync(path.join(run.dir, 'assets', 'x', 'y', 'b.bin'), 'utf8'), 'content of /deep/b.bin');
    assert.equal(stats[0]!.bytes, 'content of /a.txt'.length + 'content of /deep/b.bin'.length);
  });

  it('refuses a file whose digest does not match, leaving no file behind', async () => {
    const { run, result } = download({ files: [{ url: `${base}/a.txt`, file_path: 'a.txt', digest: sha('something else') }] });
    await assert.rejects(result, (e: WsdError) => e.code === 'FAILED_PRECONDITION' && /digest mismatch/.test(e.message) && e.field === 'initializer.download.files[0].digest');
    assert.deepEqual(readdirSync(run.dir), []);
  });

  it('retries transient failures and gives up on a 404', async () => {
    failures = 2;
    const { run, result } = download({ files: [{ url: `${base}/flaky`, file_path: 'f', digest: sha('content of /flaky') }] });
    await result;
    assert.ok(existsSync(path.join(run.dir, 'f')));
    const missing = download({ files: [{ url: `${base}/missing`, file_path: 'm', digest: sha('') }] });
    await assert.rejects(missing.result, (e: WsdError) => e.code === 'FAILED_PRECONDITION' && /HTTP 404/.test(e.message));
  });

  it('does not write through a symlink planted in the workspace', async () => {
    const run = initializerRun<DownloadSpec>({ target_location: 'assets', files: [{ url: `${base}/a.txt`, file_path: 'a.txt', digest: sha('content of /a.txt') }] });
    mkdirSync(path.join(run.sandbox, 'outside'));
    symlinkSync(path.join(run.sandbox, 'outside'), path.join(run.dir, 'assets'));
    const result = new DownloadContentInitializer({ attempts: 1, initialRetryDelayMs: 1 }).initialize(run.options);
    await assert.rejects(result, (e: WsdError) => e.code === 'FAILED_PRECONDITION' && /assets exists and is not a folder/.test(e.message));
    assert.deepEqual(readdirSync(path.join(run.sandbox, 'outside')), []);
  });

  it('keeps every path inside the workspace and validates digests', async () => {
    const escape = download({ files: [{ url: `${base}/a`, file_path: '../../etc/x', digest: sha('') }] });
    await assert.rejects(escape.result, (e: WsdError) => e.code === 'INVALID_ARGUMENT' && e.field === 'initializer.download.files[0].file_path');
    const target = download({ target_location: '/etc', files: [] });
    await assert.rejects(target.result, (e: WsdError) => e.code === 'INVALID_ARGUMENT' && e.field === 'initializer.download.target_location');
    const digest = download({ files: [{ url: `${base}/a`, file_path: 'a', digest: 'md5:abc' }] });
    await assert.rejects(digest.result, (e: WsdError) => e.code === 'INVALID_ARGUMENT' && /sha256:<64 hex digits>/.test(e.message));
    for (const r of [escape, target, digest]) assert.deepEqual(readdirSync(r.run.sandbox), ['workspace']);
  });
});
