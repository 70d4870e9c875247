import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { extractArchive } from '../../core/content/archive.js';
import { WsdError } from '../../core/errors.js';
import { rawTar, type RawTarEntry } from '../kit/tar-writer.js';
import { tempDir } from '../kit/temp-dir.js';

const zstd = (data: Buffer) => spawnSync('zstd', ['-q', '-c'], { input: data, maxBuffer: 1 << 30 }).stdout;

/** Extracts a hand-made archive into `<sandbox>/ws` and reports what happened inside and outside it. */
async function extract(entries: RawTarEntry[], options: { allowSpecialFiles?: boolean } = {}) {
  const sandbox = tempDir('wsd-hostile-');
  const dir = path.join(sandbox, 'ws');
  mkdirSync(dir);
  let error: unknown;
  try {
    await extractArchive(Readable.from([zstd(rawTar(entries))]), dir, options);
  } catch (e) {
    error = e;
  }
  return { sandbox, dir, error, outside: readdirSync(sandbox).filter((n) => n !== 'ws') };
}

function refused(result: Awaited<ReturnType<typeof extract>>, reason: RegExp) {
  assert.ok(result.error instanceof WsdError, `expected a refusal, got ${String(result.error)}`);
  assert.equal(result.error.code, 'DATA_LOSS');
  assert.match(result.error.message, reason);
  assert.deepEqual(result.outside, [], 'nothing written next to the workspace folder');
}

describe('restoring hostile archives', () => {
  it('extracts a benign hand-made archive', async () => {
    const r = await extract([
      { name: './', type: '5' },
      { name: './dir/', type: '5' },
      { name: './dir/file.txt', data: 'hello' },
      { name: './link', type: '2', linkName: 'dir/file.txt' },
      { name: './hard', type: '1', linkName: './dir/file.txt' },
    ]);
    assert.equal(r.error, undefined);
    assert.equal(readFileSync(path.join(r.dir, 'hard'), 'utf8'), 'hello');
    assert.ok(lstatSync(path.join(r.dir, 'link')).isSymbolicLink());
  });

  it('refuses absolute paths', async () => {
    rmSync('/tmp/wsd-absolute-escape', { force: true });
    refused(await extract([{ name: '/tmp/wsd-absolute-escape', data: 'x' }]), /absolute path/);
    assert.equal(existsSync('/tmp/wsd-absolute-escape'), false);
  });

  it('refuses ".." traversal', async () => {
    refused(await extract([{ name: './ok.txt', data: 'ok' }, { name: '../escaped.txt', data: 'x' }]), /"\.\." in its path/);
    refused(await extract([{ name: 'a/../../escaped.txt', data: 'x' }]), /"\.\." in its path/);
  });

  it('refuses writing through a symlink to outside the folder', async () => {
    const r = await extract([
      { name: './escape', type: '2', linkName: '..' },
      { name: './escape/pwned.txt', data: 'x' },
    ]);
    refused(r, /written through the symlink "escape"/);
    const abs = await extract([
      { name: 'etc', type: '2', linkName: '/etc' },
      { name: 'etc/wsd-pwned', data: 'x' },
    ]);
    refused(abs, /through the symlink "etc"/);
    assert.equal(existsSync('/etc/wsd-pwned'), false);
  });

  it('refuses hard links that point outside the folder', async () => {
    refused(await extract([{ name: 'shadow', type: '1', linkName: '/etc/shadow' }]), /hard link to "\/etc\/shadow"/);
    refused(await extract([{ name: 'up', type: '1', linkName: '../outside' }]), /hard link/);
  });

  it('refuses device nodes and fifos unless configured', async () => {
    refused(await extract([{ name: 'null', type: '3' }]), /device node/);
    refused(await extract([{ name: 'sda', type: '4' }]), /device node/);
    refused(await extract([{ name: 'pipe', type: '6' }]), /fifo/);
    const allowed = await extract([{ name: 'pipe', type: '6' }], { allowSpecialFiles: true });
    assert.equal(allowed.error, undefined);
    assert.ok(lstatSync(path.join(allowed.dir, 'pipe')).isFIFO());
  });

  it('fails on garbage and on truncated archives with DATA_LOSS', async () => {
    const sandbox = tempDir();
    await assert.rejects(extractArchive(Readable.from([zstd(Buffer.alloc(2048, 7))]), sandbox), (e: WsdError) => e.code === 'DATA_LOSS');
    const archive = rawTar([{ name: 'big.bin', data: Buffer.alloc(100_000, 1) }]);
    await assert.rejects(extractArchive(Readable.from([zstd(archive.subarray(0, 20_000))]), sandbox), (e: WsdError) => e.code === 'DATA_LOSS');
    await assert.rejects(extractArchive(Readable.from([Buffer.from('not zstd at all')]), sandbox), (e: WsdError) => e.code === 'DATA_LOSS');
  });
});
