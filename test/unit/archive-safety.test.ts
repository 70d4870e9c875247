import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, ftruncateSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { extractArchive } from '../../core/content/archive.js';
import { TarInspector, type TarInspectorOptions } from '../../core/content/tar-inspector.js';
import { WsdError } from '../../core/errors.js';
import { padded, paxRecords, rawTar, rawTarHeader, type RawTarEntry } from '../kit/tar-writer.js';
import { tempDir } from '../kit/temp-dir.js';

const zstd = (data: Buffer) => spawnSync('zstd', ['-q', '-c'], { input: data, maxBuffer: 1 << 30 }).stdout;

/** Extracts a hand-made archive into `<sandbox>/ws` and reports what happened inside and outside it. */
async function extract(entries: RawTarEntry[] | Buffer, options: { allowSpecialFiles?: boolean } = {}) {
  const sandbox = tempDir('wsd-hostile-');
  const dir = path.join(sandbox, 'ws');
  mkdirSync(dir);
  let error: unknown;
  try {
    await extractArchive(Readable.from([zstd(Buffer.isBuffer(entries) ? entries : rawTar(entries))]), dir, options);
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

const isRoot = process.getuid?.() === 0;
/** The flags extractArchive gives GNU tar. */
const untarArgs = (dir: string) => ['--extract', '--file=-', '--directory', dir, '--same-permissions', '--delay-directory-restore', ...(isRoot ? ['--same-owner', '--numeric-owner'] : ['--no-same-owner'])];
const gnuTar = (src: string, extra: string[] = []) =>
  spawnSync('tar', ['--create', '--file=-', '--format=posix', '--numeric-owner', ...extra, '--directory', src, '.'], { maxBuffer: 1 << 30 }).stdout;

function* pieces(data: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

/** Feeds `archive` to a TarInspector in pieces of `chunkSize` bytes and collects what it lets through. */
async function inspect(archive: Buffer, options: TarInspectorOptions = {}, chunkSize = 64 * 1024) {
  const inspector = new TarInspector(options);
  const out: Buffer[] = [];
  let error: unknown;
  try {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out.push(chunk);
        callback();
      },
    });
    await pipeline(Readable.from(pieces(archive, chunkSize)), inspector, sink);
  } catch (e) {
    error = e;
  }
  return { inspector, output: Buffer.concat(out), error };
}

/** extractArchive's pipeline — zstd -d → TarInspector → GNU tar, same flags — with options it does not pass on (yet). */
async function restore(compressed: Buffer, dir: string, options: TarInspectorOptions) {
  const unzstd = spawn('zstd', ['-d', '-q', '-c'], { stdio: ['pipe', 'pipe', 'ignore'] });
  const tar = spawn('tar', untarArgs(dir), { stdio: ['pipe', 'ignore', 'pipe'] });
  let tarErr = '';
  tar.stderr!.setEncoding('utf8').on('data', (d: string) => (tarErr += d));
  const closed = (child: ChildProcess) => new Promise<number | null>((resolve) => child.once('close', resolve));
  const exits = Promise.all([closed(unzstd), closed(tar)]);
  const inspector = new TarInspector(options);
  const fed = pipeline(Readable.from([compressed]), unzstd.stdin!);
  let error: unknown;
  try {
    await pipeline(unzstd.stdout!, inspector, tar.stdin!);
  } catch (e) {
    error = e; // the inspector's refusal, not the broken pipe into zstd that follows it
    unzstd.kill();
    tar.kill();
  }
  await fed.catch(() => {});
  const [, tarCode] = await exits;
  return { error, inspector, tarCode, tarErr };
}

function assertError(error: unknown, code: string, message: RegExp) {
  assert.ok(error instanceof WsdError, `expected a WsdError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  assert.match(error.message, message);
}

/** The headers of a tar stream, read without TarInspector (no long names needed: ustar fields only). */
function headersOf(tar: Buffer) {
  const headers: { name: string; offset: number; type: string; mode: number; checksumOk: boolean; checksumField: string }[] = [];
  for (let offset = 0; offset + 512 <= tar.length; ) {
    const h = tar.subarray(offset, offset + 512);
    if (h.every((b) => b === 0)) break;
    const field = (start: number, length: number) => h.subarray(start, start + length).toString('latin1').split('\0')[0]!;
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    const checksumField = h.subarray(148, 156).toString('latin1');
    headers.push({ name: field(0, 100), offset, type: String.fromCharCode(h[156]!), mode: parseInt(field(100, 8), 8), checksumOk: parseInt(checksumField, 8) === sum, checksumField });
    offset += 512 + Math.ceil(parseInt(field(124, 12), 8) / 512) * 512;
  }
  return headers;
}

/** A sparse file of `size` bytes with `data` written at each of `at`. */
function sparseFile(file: string, size: number, at: number[], data = Buffer.alloc(1000, 0x78)) {
  const fd = openSync(file, 'w');
  for (const offset of at) writeSync(fd, data, 0, data.length, offset);
  ftruncateSync(fd, size);
  closeSync(fd);
}

function setuidTree(): string {
  const src = tempDir('wsd-setuid-src-');
  const file = (name: string, mode: number) => {
    writeFileSync(path.join(src, name), '#!/bin/sh\n');
    chmodSync(path.join(src, name), mode);
  };
  file('su-tool', 0o6755);
  file('sg-tool', 0o2711);
  file('sticky-file', 0o1644);
  mkdirSync(path.join(src, 'shared'));
  chmodSync(path.join(src, 'shared'), 0o2775);
  file('shared/plain', 0o640);
  return src;
}

/** What GNU tar has to get right, small enough to feed byte by byte. */
function mixedTree(): string {
  const src = setuidTree();
  sparseFile(path.join(src, 'sparse.img'), 1024 * 1024, [0, 5000, 700_000, 1024 * 1024 - 1000]);
  writeFileSync(path.join(src, 'random.bin'), Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7919) % 251)));
  mkdirSync(path.join(src, 'd'.repeat(120)));
  writeFileSync(path.join(src, 'd'.repeat(120), `${'f'.repeat(150)}.txt`), 'long names');
  writeFileSync(path.join(src, 'ünïcødé 文件.txt'), 'unicode');
  writeFileSync(path.join(src, 'empty'), '');
  linkSync(path.join(src, 'random.bin'), path.join(src, 'hard'));
  symlinkSync('random.bin', path.join(src, 'sym'));
  return src;
}

describe('bounding what a restore reads and writes', () => {
  it('refuses a stream that outgrows maxStreamBytes before the member that crosses the limit passes', async () => {
    const archive = rawTar([
      { name: 'small.txt', data: Buffer.alloc(1000, 1) },
      { name: 'big.bin', data: Buffer.alloc(1024 * 1024, 2) },
    ]);
    const { error, output, inspector } = await inspect(archive, { maxStreamBytes: 600_000 }, 512);
    assertError(error, 'DATA_LOSS', /expands past the 600000 bytes its manifest records.*big\.bin/);
    assert.equal(output.length, 1536, 'small.txt passed, not a byte of big.bin');
    assert.equal(inspector.members, 1);

    const exact = await inspect(archive, { maxStreamBytes: archive.length });
    assert.equal(exact.error, undefined);
    assert.ok(exact.output.equals(archive));
    assert.equal(exact.inspector.bytesProcessed, archive.length);
  });

  it('accepts a GNU tar stream of exactly the size its --totals reports, and not a byte more', async () => {
    const src = mixedTree();
    const made = spawnSync('tar', ['--create', '--file=-', '--format=posix', '--sparse', '--totals', '--directory', src, '.'], { maxBuffer: 1 << 30 });
    const total = Number(/Total bytes written: (\d+)/.exec(made.stderr.toString())![1]);
    assert.equal(made.stdout.length, total, 'the totals count the whole stream, end blocks and record padding included');
    assert.equal((await inspect(made.stdout, { maxStreamBytes: total })).error, undefined);
    assertError((await inspect(made.stdout, { maxStreamBytes: total - 1 })).error, 'DATA_LOSS', /expands past/);
  });

  for (const [what, files, size] of [
    ['one 200 MiB file of zeros', 1, 200 * 1024 * 1024],
    ['400 files of 512 KiB of zeros', 400, 512 * 1024],
  ] as const) {
    it(`stops a zstd bomb early (${what}): the folder holds no more than the limit`, async () => {
      const src = tempDir('wsd-bomb-src-');
      for (let i = 0; i < files; i++) sparseFile(path.join(src, `zeros-${i}`), size, []);
      // Without --sparse, tar stores every zero: a 200 MiB stream that zstd packs into a few KB.
      const made = spawnSync('sh', ['-c', 'tar --create --file=- --format=posix --numeric-owner --directory "$1" . | zstd -q -c', 'sh', src], { maxBuffer: 1 << 30 });
      assert.equal(made.status, 0, made.stderr.toString());
      assert.ok(made.stdout.length < 1024 * 1024, `a bomb: ${made.stdout.length} bytes expand to 200 MiB`);

      const limit = 4 * 1024 * 1024; // what the manifest of a planted archive claims
      const dir = tempDir('wsd-bomb-');
      const r = await restore(made.stdout, dir, { maxStreamBytes: limit });
      assertError(r.error, 'DATA_LOSS', /expands past the 4194304 bytes its manifest records/);
      const written = readdirSync(dir).reduce((sum, name) => sum + lstatSync(path.join(dir, name)).size, 0);
      assert.ok(written <= limit, `${written} bytes extracted`);
      assert.ok(r.inspector.bytesProcessed < 2 * limit, `decompression stopped after ${r.inspector.bytesProcessed} bytes`);
    });
  }

  it('refuses file data past maxDataBytes with RESOURCE_EXHAUSTED, naming the limit', async () => {
    const archive = rawTar([
      { name: 'a', data: Buffer.alloc(1000) },
      { name: 'dir/', type: '5' },
      { name: 'b', data: Buffer.alloc(1000) },
      { name: 'c', data: Buffer.alloc(1000) },
    ]);
    const { error, inspector, output } = await inspect(archive, { maxDataBytes: 2500, dataLimitReason: 'the workspace quota' }, 512);
    assertError(error, 'RESOURCE_EXHAUSTED', /more than 2500 bytes of file data \(the workspace quota\): member "c"/);
    assert.equal(inspector.dataBytes, 2000);
    assert.equal(inspector.members, 3);
    assert.equal(output.length, 3 * 1536 - 1024, 'the header of "c" did not pass');

    // A sparse file counts the data it stores, not its apparent size.
    const src = tempDir('wsd-sparse-quota-');
    sparseFile(path.join(src, 'sparse.img'), 64 * 1024 * 1024, [0, 32 * 1024 * 1024]);
    const sparse = await inspect(gnuTar(src, ['--sparse']), { maxDataBytes: 64 * 1024 });
    assert.equal(sparse.error, undefined);
    assert.ok(sparse.inspector.dataBytes < 64 * 1024, `${sparse.inspector.dataBytes} bytes counted`);
  });

  it('passes at most one record after the end of the archive, and counts the rest against the limit', async () => {
    const archive = rawTar([{ name: 'a', data: 'x' }]); // its end-of-archive block starts at byte 1024
    const stream = Buffer.concat([archive, Buffer.alloc(100 * 1024, 0x41)]);
    const open = await inspect(stream, {}, 4096);
    assert.equal(open.error, undefined);
    assert.equal(open.inspector.bytesProcessed, stream.length);
    assert.ok(open.output.equals(stream.subarray(0, 1024 + 10240)));
    assertError((await inspect(stream, { maxStreamBytes: 1024 + 10240 }, 4096)).error, 'DATA_LOSS', /expands past the 11264 bytes/);
  });
});

describe('setuid and setgid bits', () => {
  it('clears them on files, keeps setgid on folders, and GNU tar extracts the rewritten headers', async () => {
    const archive = gnuTar(setuidTree());
    const { error, output } = await inspect(archive);
    assert.equal(error, undefined);
    const headers = headersOf(output).filter((h) => h.type !== 'x');
    const mode = (name: string) => headers.find((h) => h.name === name)?.mode;
    assert.equal(mode('./su-tool'), 0o755);
    assert.equal(mode('./sg-tool'), 0o711);
    assert.equal(mode('./sticky-file'), 0o1644);
    assert.equal(mode('./shared/'), 0o2775);
    assert.equal(mode('./shared/plain'), 0o640);
    for (const h of headersOf(output)) {
      assert.ok(h.checksumOk, `checksum of ${h.name}`);
      assert.match(h.checksumField, /^[0-7]{6}\0 $/);
    }
    // Nothing else changed: only the mode and checksum fields of the two rewritten headers.
    assert.equal(output.length, archive.length);
    const rewritten = new Set(headersOf(archive).filter((h) => h.name === './su-tool' || h.name === './sg-tool').map((h) => h.offset));
    for (let i = 0; i < archive.length; i++) {
      if (archive[i] === output[i]) continue;
      const at = i % 512;
      assert.ok(rewritten.has(i - at) && ((at >= 100 && at < 108) || (at >= 148 && at < 156)), `byte ${i} changed`);
    }

    const dir = tempDir('wsd-setuid-out-');
    const r = spawnSync('tar', untarArgs(dir), { input: output });
    assert.equal(r.status, 0, r.stderr.toString());
    assert.equal(r.stderr.toString(), '', 'GNU tar has nothing to say (no checksum error)');
    const onDisk = (name: string) => statSync(path.join(dir, name)).mode & 0o7777;
    assert.equal(onDisk('su-tool'), 0o755);
    assert.equal(onDisk('sg-tool'), 0o711);
    assert.equal(onDisk('sticky-file'), 0o1644);
    assert.equal(onDisk('shared'), 0o2775);
    if (isRoot) assert.equal(statSync(path.join(dir, 'su-tool')).uid, 0, 'root-owned, as archived — only the bits are gone');
  });

  it('keeps them with preserveSetuid', async () => {
    const archive = gnuTar(setuidTree());
    const { error, output } = await inspect(archive, { preserveSetuid: true });
    assert.equal(error, undefined);
    assert.ok(output.equals(archive));
    const dir = tempDir('wsd-setuid-kept-');
    assert.equal(spawnSync('tar', untarArgs(dir), { input: output }).status, 0);
    // Only root may give a file setgid for a group it is not in; as root, tar restores exactly what was archived.
    if (isRoot) assert.equal(statSync(path.join(dir, 'su-tool')).mode & 0o7777, 0o6755);
    assert.equal(statSync(path.join(dir, 'su-tool')).mode & 0o4000, 0o4000);
  });

  it('refuses a base-256 mode field (nothing legitimate writes one)', async () => {
    const header = rawTarHeader({ name: 'odd-mode' });
    Buffer.from([0x80, 0, 0, 0, 0, 0, 0x0d, 0xed]).copy(header, 100); // 06755 in base 256
    header.fill(0x20, 148, 156);
    header.write(`${header.reduce((sum, b) => sum + b, 0).toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    assertError((await inspect(Buffer.concat([header, Buffer.alloc(1024)]))).error, 'DATA_LOSS', /"odd-mode" refused: unreadable mode/);
  });
});

describe('archives GNU tar would read differently from a naive inspector', () => {
  // Each archive hides a fifo where GNU tar reads a header but a naive reader reads data (or the other way round):
  // a hidden header would skip every check. The inspector refuses them all (GNU tar writes none of them).
  const hidden = rawTarHeader({ name: 'hidden', type: '6' });
  const end = Buffer.alloc(1024);
  const blockOf = (text: string) => {
    const b = Buffer.alloc(512);
    b.write(text, 'latin1');
    return b;
  };
  const paxHeader = (records: Record<string, string>) => {
    const body = paxRecords(records);
    return Buffer.concat([rawTarHeader({ name: 'PaxHeaders/x', type: 'x' }, body.length), padded(body)]);
  };
  /** A header a naive reader takes for a file whose data covers the next three blocks. */
  const decoy = rawTarHeader({ name: 'decoy' }, 1536);

  const cases: [string, () => Buffer, RegExp][] = [
    [
      'an old GNU sparse member, whose extension blocks come before its data',
      () => {
        const src = tempDir('wsd-oldgnu-');
        sparseFile(path.join(src, 'sparse.bin'), 10 * 1024 * 1024, [0, 1, 2, 3, 4, 5, 6, 7].map((i) => i * 1024 * 1024));
        const archive = spawnSync('tar', ['--create', '--file=-', '--format=gnu', '--sparse', '--directory', src, 'sparse.bin'], { maxBuffer: 1 << 30 }).stdout;
        let offset = 512;
        for (let more = archive[482]!; more; offset += 512) more = archive[offset + 504]!;
        offset += Math.ceil(parseInt(archive.subarray(124, 136).toString('latin1'), 8) / 512) * 512;
        return Buffer.concat([archive.subarray(0, offset), hidden, end]);
      },
      /old GNU sparse member/,
    ],
    [
      'a pax sparse member whose map makes tar read more blocks than the member stores',
      () =>
        Buffer.concat([
          paxHeader({ 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': 'sp', 'GNU.sparse.realsize': '2048' }),
          rawTarHeader({ name: 'GNUSparseFile.1/sp' }, 1024),
          blockOf('4\n0\n1\n512\n1\n1024\n1\n1536\n1\n'), // four 1-byte regions: four blocks for tar
          blockOf('a'),
          decoy,
          blockOf('b'),
          blockOf('c'),
          hidden,
          end,
        ]),
      /sparse map describes 4 bytes in 4 blocks, its stored data is 512 bytes/,
    ],
    [
      'a pax 0.1 sparse member',
      () =>
        Buffer.concat([
          paxHeader({ 'GNU.sparse.size': '2048', 'GNU.sparse.numblocks': '4', 'GNU.sparse.map': '0,1,512,1,1024,1,1536,1' }),
          rawTarHeader({ name: 'sp' }, 512),
          blockOf('a'),
          decoy,
          blockOf('b'),
          blockOf('c'),
          hidden,
          end,
        ]),
      /format other than GNU pax sparse 1\.0/,
    ],
    ['a file named like a folder, with data (tar makes a folder and reads no data)', () => Buffer.concat([rawTarHeader({ name: 'dir/' }, 512), hidden, end]), /folder name and data/],
    ['a symlink that says it has data', () => Buffer.concat([rawTarHeader({ name: 'link', type: '2', linkName: 'x' }, 512), hidden, end]), /a symlink with 512 bytes of data/],
    [
      'a size field GNU tar cannot read (it skips ahead to the next header it recognises)',
      () => Buffer.concat([rawTarHeader({ name: 'reg', sizeField: Buffer.from('00000001000x') }), hidden, end]),
      /unreadable size/,
    ],
    [
      'a pax record with a blank before its keyword (GNU tar reads it, a naive parser sees " path")',
      () => rawTar([{ name: 'PaxHeaders/x', type: 'x', data: '16  path=hidden\n' }, { name: 'benign', type: '6' }]),
      /malformed pax header/,
    ],
    ['a member with an empty name (tar skips it, reading its size as data)', () => Buffer.concat([rawTarHeader({ name: '', type: '2', linkName: 'x' }), end]), /empty name/],
  ];
  for (const [what, make, reason] of cases) {
    it(`refuses ${what}`, async () => {
      const r = await extract(make());
      refused(r, reason);
      assert.equal(existsSync(path.join(r.dir, 'hidden')), false);
    });
  }
});

describe('streaming', () => {
  it('passes the same bytes whatever the chunking, and GNU tar extracts them', async () => {
    const src = mixedTree();
    const archive = gnuTar(src, ['--sparse']);
    const expected = (await inspect(archive)).output;
    assert.equal(expected.length, archive.length);
    for (const size of [1, 511, 513, 64 * 1024]) {
      const { error, output } = await inspect(archive, {}, size);
      assert.equal(error, undefined, `${size}-byte chunks`);
      assert.ok(output.equals(expected), `${size}-byte chunks give the same output`);
    }

    const dir = tempDir('wsd-mixed-');
    const r = await restore(zstd(archive), dir, { maxStreamBytes: archive.length, maxDataBytes: archive.length });
    assert.equal(r.error, undefined);
    assert.equal(r.tarCode, 0, r.tarErr);
    for (const name of ['random.bin', 'sparse.img', path.join('d'.repeat(120), `${'f'.repeat(150)}.txt`), 'ünïcødé 文件.txt']) {
      assert.ok(readFileSync(path.join(dir, name)).equals(readFileSync(path.join(src, name))), name);
    }
    assert.equal(statSync(path.join(dir, 'hard')).ino, statSync(path.join(dir, 'random.bin')).ino);
    assert.equal(statSync(path.join(dir, 'su-tool')).mode & 0o7777, 0o755);
  });
});
