import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { extractArchive } from '../../core/content/archive.js';
import { DigestStream } from '../../core/content/digest-stream.js';
import { isWsdError, WsdError } from '../../core/errors.js';
import { until } from '../kit/polling.js';
import { rawTar } from '../kit/tar-writer.js';
import { tempDir } from '../kit/temp-dir.js';

// Issue 11 ("Stress"): can a restore of a good archive fail with ERR_STREAM_PREMATURE_CLOSE and be reported as
// DATA_LOSS? These tests force, deterministically and with the real zstd and GNU tar, each way a stream of the
// restore pipeline can close before it ends. A good archive must restore; a transfer that breaks is the storage's
// failure (UNAVAILABLE, retryable), never DATA_LOSS ("the archive is corrupt"); nothing may hang.

const zstd = (data: Buffer) => spawnSync('zstd', ['-q', '-c'], { input: data, maxBuffer: 1 << 30 }).stdout;

/** Files of a small tree, as a tar stream padded to whole 10 KiB records, the way GNU tar writes it. */
function goodTar(): { tar: Buffer; files: Record<string, string> } {
  const files: Record<string, string> = {};
  for (let i = 0; i < 40; i++) files[`src/f${i}.txt`] = `file ${i}\n`.repeat(50 + i);
  const raw = rawTar([{ name: 'src/', type: '5' }, ...Object.entries(files).map(([name, data]) => ({ name, data }))]);
  const record = 10240;
  return { tar: Buffer.concat([raw, Buffer.alloc(Math.ceil(raw.length / record) * record - raw.length)]), files };
}

/** Pids of this process's live (not zombie) children running `command`, read from /proc. */
async function childrenNamed(command: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    const close = stat.lastIndexOf(')');
    if (close === -1 || stat.slice(stat.indexOf('(') + 1, close) !== command) continue;
    const [state, ppid] = stat.slice(close + 2).split(' ');
    if (Number(ppid) === process.pid && state !== 'Z') pids.push(Number(name));
  }
  return pids;
}

/** Gone from /proc: exited and reaped by node, so node has also run its exit handling (which destroys its stdin). */
const reaped = async (pid: number) => (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')) === '';

function assertRestored(dir: string, files: Record<string, string>): void {
  for (const [name, data] of Object.entries(files)) assert.equal(readFileSync(path.join(dir, name), 'utf8'), data, name);
}

function freshDir(): string {
  const dir = path.join(tempDir('wsd-restore-race-'), 'ws');
  mkdirSync(dir);
  return dir;
}

describe('restore pipeline: streams that close before they end', () => {
  it('a good archive restores when tar exits after the end-of-archive record while the stream goes on', async () => {
    // The archive, then trailing bytes after its end (a second zstd frame: zstd reads concatenated frames; GNU tar
    // reads nothing past the end-of-archive record). The trailing bytes are incompressible because zstd reads its
    // input in ~128 KiB blocks and writes nothing before it has one: only with enough input behind the archive does
    // the archive's end reach tar while the stream is still open. The last 512 KiB come only once tar has exited and
    // node has reaped it (and so destroyed tar's stdin). Before the ChildStdin fix (3518413) the pipeline into tar's
    // stdin then failed with "Premature close", and this good archive was reported as DATA_LOSS.
    const { tar, files } = goodTar();
    const dir = freshDir();
    const trailing = zstd(randomBytes(1024 * 1024));
    const cut = trailing.length - 512 * 1024;
    let tarPid: number | undefined;
    const body = Readable.from(
      (async function* () {
        await until(async () => (tarPid = (await childrenNamed('tar'))[0]) !== undefined, 'tar to start');
        yield zstd(tar);
        yield trailing.subarray(0, cut);
        await until(() => reaped(tarPid!), 'tar to exit after the end-of-archive record (the race, made certain)');
        yield trailing.subarray(cut);
      })(),
    );
    const result = await extractArchive(body, dir);
    assert.equal(result.members, Object.keys(files).length + 1);
    assertRestored(dir, files);
  });

  it('a storage stream that fails midway with a plain error is UNAVAILABLE, not DATA_LOSS', async () => {
    // What a backend that does not wrap its errors (storage/local's fs stream, an http body) produces.
    const { tar } = goodTar();
    const compressed = zstd(Buffer.concat([tar, Buffer.alloc(4 * 1024 * 1024, 'x')]));
    const body = new Readable({ read() {} });
    body.push(compressed.subarray(0, compressed.length >> 1));
    setImmediate(() => body.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })));
    const error = await extractArchive(DigestStream.of(body), freshDir()).then(
      () => assert.fail('a broken transfer cannot restore'),
      (e: unknown) => e,
    );
    assert.ok(isWsdError(error, 'UNAVAILABLE'), `expected UNAVAILABLE, got ${String(error)}`);
    assert.match((error as Error).message, /socket hang up/);
  });

  it('a storage stream that closes midway without an error fails the restore (UNAVAILABLE) instead of hanging it', { timeout: 60_000 }, async () => {
    const { tar } = goodTar();
    const compressed = zstd(Buffer.concat([tar, Buffer.alloc(4 * 1024 * 1024, 'x')]));
    const body = new Readable({ read() {} });
    body.push(compressed.subarray(0, compressed.length >> 1));
    setImmediate(() => body.destroy());
    const error = await extractArchive(DigestStream.of(body), freshDir()).then(
      () => assert.fail('a cut transfer cannot restore'),
      (e: unknown) => e,
    );
    assert.ok(isWsdError(error, 'UNAVAILABLE'), `expected UNAVAILABLE, got ${String(error)}`);
    assert.match((error as Error).message, /closed before its end|Premature close/i);
  });

  it('a WsdError of the storage stream reaches the caller as it is', async () => {
    const { tar } = goodTar();
    const compressed = zstd(Buffer.concat([tar, Buffer.alloc(4 * 1024 * 1024, 'x')]));
    const body = new Readable({ read() {} });
    body.push(compressed.subarray(0, compressed.length >> 1));
    const thrown = new WsdError('UNAVAILABLE', 'storage/s3: get k: connection reset (3 tries)');
    setImmediate(() => body.destroy(thrown));
    await assert.rejects(extractArchive(DigestStream.of(body), freshDir()), (e: unknown) => e === thrown);
  });

  it('a corrupt archive is still DATA_LOSS', async () => {
    const { tar } = goodTar();
    const compressed = zstd(tar);
    compressed[compressed.length >> 1] ^= 0xff;
    await assert.rejects(extractArchive(Readable.from([compressed]), freshDir()), (e: unknown) => isWsdError(e, 'DATA_LOSS'));
  });
});

describe('DigestStream.of', () => {
  it('fails when its source closes before its end (it used to wait forever)', { timeout: 60_000 }, async () => {
    const source = new Readable({ read() {} });
    source.push(Buffer.from('part'));
    const meter = DigestStream.of(source);
    meter.resume();
    setImmediate(() => source.destroy());
    const error = await new Promise((resolve) => meter.once('error', resolve));
    assert.equal((error as NodeJS.ErrnoException).code, 'ERR_STREAM_PREMATURE_CLOSE');
  });

  it('measures a source that ends normally', async () => {
    const meter = DigestStream.of(Readable.from([Buffer.from('ab'), Buffer.from('c')]));
    for await (const _ of meter);
    assert.equal(meter.size, 3);
    assert.equal(meter.sha256, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
