import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WsdError } from '../../../core/errors.js';
import { initializerRun } from '../../../test/kit/initializer-options.js';
import { DownloadContentInitializer, type DownloadOptions, type DownloadSpec } from './download-content-initializer.js';

const hex = (text: string) => createHash('sha256').update(text).digest('hex');
const sha = (text: string) => `sha256:${hex(text)}`;

/** Every test server listens on 127.0.0.1 (or .2): the initializer refuses loopback unless allowed explicitly. */
const local: Partial<DownloadOptions> = { allowedNetworks: ['127.0.0.1/32'] };

async function listen(server: Server, host: string): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return `http://${host}:${(server.address() as AddressInfo).port}`;
}
const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

describe('initializer/download', () => {
  let server: Server;
  let second: Server;
  let base: string;
  let secondBase: string;
  let failures = 0;
  let hits = 0;
  let vanishing: string | undefined;
  let secondHits = 0;
  before(async () => {
    server = createServer((req, res) => {
      hits++;
      const url = new URL(req.url!, 'http://x');
      if (url.pathname === '/flaky' && failures-- > 0) return void res.writeHead(503).end();
      if (url.pathname === '/missing') return void res.writeHead(404).end();
      if (url.pathname === '/to-second') return void res.writeHead(302, { location: `${secondBase}/a.txt` }).end();
      if (url.pathname === '/to-a') return void res.writeHead(301, { location: '/a.txt' }).end();
      if (url.pathname === '/loop') return void res.writeHead(302, { location: '/loop' }).end();
      if (url.pathname === '/to-file') return void res.writeHead(302, { location: 'file:///etc/passwd' }).end();
      if (url.pathname === '/stream') {
        // No Content-Length: the size limit must hold while streaming, not only on the declared length.
        res.writeHead(200);
        res.write('x'.repeat(64));
        return void setImmediate(() => res.end('y'.repeat(64)));
      }
      if (url.pathname === '/stall') return void res.writeHead(200).write('partial');
      if (url.pathname === '/vanish') {
        // What a second daemon on the same data folder did: the workspace folder is removed while the download runs.
        rmSync(vanishing!, { recursive: true, force: true });
        return void res.writeHead(200).end('content of /vanish');
      }
      res.writeHead(200).end(`content of ${url.pathname}`);
    });
    second = createServer((req, res) => {
      secondHits++;
      res.writeHead(200).end(`content of ${req.url}`);
    });
    base = await listen(server, '127.0.0.1');
    // Linux routes all of 127.0.0.0/8 to lo: a second loopback address, outside 127.0.0.1/32.
    secondBase = await listen(second, '127.0.0.2');
  });
  after(async () => {
    server.closeAllConnections();
    await Promise.all([close(server), close(second)]);
  });

  const download = (spec: DownloadSpec, options: Partial<DownloadOptions> = local) => {
    const run = initializerRun(spec);
    return { run, result: new DownloadContentInitializer({ attempts: 3, initialRetryDelayMs: 20, ...options }).initialize(run.options) };
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

  it('refuses loopback by default: PERMISSION_DENIED naming the field, nothing written, nothing requested', async () => {
    const asked = hits;
    for (const url of [`${base}/a.txt`, `http://localhost:${new URL(base).port}/a.txt`, `http://[::1]:${new URL(base).port}/a.txt`, `http://[::ffff:127.0.0.1]:${new URL(base).port}/a.txt`]) {
      const { run, result } = download({ target_location: 'assets', files: [{ url, file_path: 'a.txt', digest: sha('content of /a.txt') }] }, {});
      await assert.rejects(result, (e: WsdError) => {
        assert.equal(e.code, 'PERMISSION_DENIED', `${url}: ${e.message}`);
        assert.equal(e.field, 'initializer.download.files[0].url');
        assert.match(e.message, /initializer\.download\.files\[0\]\.url: .* not allowed by initializers\.download\.deniedNetworks/);
        return true;
      });
      assert.deepEqual(readdirSync(run.dir), [], url);
      assert.deepEqual(readdirSync(run.sandbox), ['workspace']);
    }
    assert.equal(hits, asked, 'the server was never asked');
  });

  it('checks every redirect hop: a redirect out of the allowed networks is refused before connecting', async () => {
    const secondAsked = secondHits;
    const refused = download({ files: [{ url: `${base}/to-second`, file_path: 'a.txt', digest: sha('content of /a.txt') }] });
    await assert.rejects(refused.result, (e: WsdError) => e.code === 'PERMISSION_DENIED' && e.field === 'initializer.download.files[0].url');
    assert.equal(secondHits, secondAsked, 'the second server was never asked');
    assert.deepEqual(readdirSync(refused.run.dir), []);

    // The same redirect is followed when its target network is allowed too, and so is a relative one.
    const allowed = download({ files: [{ url: `${base}/to-second`, file_path: 'a.txt', digest: sha('content of /a.txt') }, { url: `${base}/to-a`, file_path: 'b.txt', digest: sha('content of /a.txt') }] }, { allowedNetworks: ['127.0.0.1/32', '127.0.0.2/32'] });
    await allowed.result;
    assert.equal(secondHits, secondAsked + 1);
    assert.equal(readFileSync(path.join(allowed.run.dir, 'b.txt'), 'utf8'), 'content of /a.txt');
  });

  it('does not retry a write into a workspace folder that vanished, nor blame the URL', async () => {
    const asked = hits;
    const { run, result } = download({ target_location: 'assets', files: [{ url: `${base}/vanish`, file_path: 'a.txt', digest: sha('content of /vanish') }] });
    vanishing = run.dir;
    await assert.rejects(result, (e: WsdError) => {
      assert.equal(e.code, 'FAILED_PRECONDITION', e.message);
      assert.equal(e.field, 'initializer.download.files[0].file_path');
      assert.match(e.message, /ENOENT|no such file/i);
      return true;
    });
    assert.equal(hits, asked + 1, 'asked once: a local failure is not retried');
  });

  it('follows at most 5 redirects and only to http(s)', async () => {
    const loop = download({ files: [{ url: `${base}/loop`, file_path: 'l', digest: sha('') }] });
    await assert.rejects(loop.result, (e: WsdError) => e.code === 'FAILED_PRECONDITION' && /more than 5 redirects/.test(e.message));
    const file = download({ files: [{ url: `${base}/to-file`, file_path: 'f', digest: sha('') }] });
    await assert.rejects(file.result, (e: WsdError) => e.code === 'FAILED_PRECONDITION' && /http: or https:/.test(e.message));
  });

  it('accepts only http and https URLs, without echoing the value', async () => {
    for (const url of ['file:///etc/passwd', 'ftp://127.0.0.1/x', 'gopher://x/', 'not a url ?token=secret']) {
      const { run, result } = download({ files: [{ url, file_path: 'f', digest: sha('') }] });
      await assert.rejects(result, (e: WsdError) => e.code === 'INVALID_ARGUMENT' && e.field === 'initializer.download.files[0].url' && !e.message.includes('secret'));
      assert.deepEqual(readdirSync(run.sandbox), ['workspace']);
    }
  });

  it('refuses a file whose digest does not match without revealing the digest of the content', async () => {
    const { run, result } = download({ files: [{ url: `${base}/a.txt`, file_path: 'a.txt', digest: sha('something else') }] });
    await assert.rejects(result, (e: WsdError) => {
      assert.equal(e.code, 'FAILED_PRECONDITION');
      assert.equal(e.field, 'initializer.download.files[0].digest');
      assert.match(e.message, /does not match initializer\.download\.files\[0\]\.digest/);
      assert.ok(!e.message.includes(hex('content of /a.txt')), e.message);
      return true;
    });
    assert.ok(!run.logs.join('').includes(hex('content of /a.txt')));
    assert.deepEqual(readdirSync(run.dir), []);
  });

  it('never shows userinfo or query of a URL in errors or logs', async () => {
    const port = new URL(base).port;
    const secretUrl = (host: string, file: string) => `http://user:pass@${host}:${port}/${file}?X-Amz-Signature=secret#frag`;
    const secretParts = ['secret', 'X-Amz-Signature', 'user:pass', 'pass@', '#frag'];
    const clean = (text: string) => secretParts.filter((part) => text.includes(part));
    const cases = [
      { file: 'missing', host: '127.0.0.1', options: local, code: 'FAILED_PRECONDITION' },
      { file: 'flaky', host: '127.0.0.1', options: { ...local, attempts: 2 }, code: 'UNAVAILABLE' },
      { file: 'a.txt', host: '127.0.0.1', options: local, code: 'FAILED_PRECONDITION', digest: sha('other') },
      { file: 'a.txt', host: '127.0.0.1', options: {}, code: 'PERMISSION_DENIED' },
      { file: 'a.txt', host: 'localhost', options: {}, code: 'PERMISSION_DENIED' },
      { file: 'a.txt', host: '127.0.0.1', options: { ...local, maxBytes: 3 }, code: 'RESOURCE_EXHAUSTED' },
    ];
    const logs: string[] = [];
    for (const c of cases) {
      failures = 5;
      const { run, result } = download({ files: [{ url: secretUrl(c.host, c.file), file_path: 'f', digest: c.digest ?? sha(`content of /${c.file}`) }] }, c.options);
      const error = await result.then(() => assert.fail('should fail'), (e: WsdError) => e);
      assert.equal(error.code, c.code, error.message);
      assert.deepEqual(clean(error.message), [], error.message);
      assert.match(error.message, new RegExp(`http://${c.host}:${port}/${c.file}`), 'the URL is shown redacted');
      logs.push(...run.logs);
    }
    assert.ok(logs.some((line) => line.includes('retrying')) && logs.some((line) => line.includes('refused')), logs.join(''));
    for (const line of logs) assert.deepEqual(clean(line), [], line);
    failures = 0;
    const { run, result } = download({ files: [{ url: secretUrl('127.0.0.1', 'ok'), file_path: 'f', digest: sha('content of /ok') }] });
    await result;
    assert.ok(run.logs.some((line) => line.includes(`http://127.0.0.1:${port}/ok`)), run.logs.join(''));
    for (const line of run.logs) assert.deepEqual(clean(line), [], line);
  });

  it('fails a file larger than maxBytes with RESOURCE_EXHAUSTED, leaving no temp file', async () => {
    const declared = download({ files: [{ url: `${base}/a.txt`, file_path: 'a.txt', digest: sha('content of /a.txt') }] }, { ...local, maxBytes: 5 });
    await assert.rejects(declared.result, (e: WsdError) => e.code === 'RESOURCE_EXHAUSTED' && e.field === 'initializer.download.files[0].url' && /maxBytes/.test(e.message));
    assert.deepEqual(readdirSync(declared.run.dir), []);

    const streamed = download({ target_location: 'sub', files: [{ url: `${base}/stream`, file_path: 's', digest: sha('x'.repeat(64) + 'y'.repeat(64)) }] }, { ...local, maxBytes: 100 });
    await assert.rejects(streamed.result, (e: WsdError) => e.code === 'RESOURCE_EXHAUSTED' && e.field === 'initializer.download.files[0].url');
    assert.deepEqual(readdirSync(path.join(streamed.run.dir, 'sub')), [], 'the temp file is gone');

    const fits = download({ files: [{ url: `${base}/stream`, file_path: 's', digest: sha('x'.repeat(64) + 'y'.repeat(64)) }] }, { ...local, maxBytes: 128 });
    await fits.result;
    assert.equal(readFileSync(path.join(fits.run.dir, 's'), 'utf8').length, 128);
  });

  it('gives up on a connection that stays silent for the timeout, leaving no temp file', async () => {
    const { run, result } = download({ files: [{ url: `${base}/stall`, file_path: 's', digest: sha('') }] }, { ...local, attempts: 1, timeoutMs: 100 });
    await assert.rejects(result, (e: WsdError) => e.code === 'UNAVAILABLE' && /no data for 0.1s/.test(e.message));
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
    const result = new DownloadContentInitializer({ attempts: 1, initialRetryDelayMs: 1, ...local }).initialize(run.options);
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
