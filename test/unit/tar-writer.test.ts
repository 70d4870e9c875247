import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, chown, link, lstat, mkdir, open, readFile, readlink, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { isWsdError } from '../../core/errors.js';
import { TarInspector } from '../../core/content/tar-inspector.js';
import { tarStream, type TarMember } from '../../core/content/tar-writer.js';
import { firstDifference, tempDir, treeManifest } from '../kit/index.js';
import { treeMembers } from '../kit/tar-members.js';
import { until } from '../kit/polling.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

async function* listOf(members: TarMember[]): AsyncGenerator<TarMember> {
  yield* members;
}

const bytes = (text: string) => () =>
  (async function* () {
    yield Buffer.from(text);
  })();

const sha = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

async function collect(members: TarMember[] | AsyncIterable<TarMember>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of tarStream(Array.isArray(members) ? listOf(members) : members)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Writes `members` to a .tar file and extracts it with GNU tar into a fresh folder (keeping owners when root). */
async function extractWithGnuTar(members: TarMember[] | AsyncIterable<TarMember>): Promise<{ archive: string; dir: string }> {
  const base = tempDir('wsd-tar-writer-');
  const archive = path.join(base, 'out.tar');
  await pipeline(tarStream(Array.isArray(members) ? listOf(members) : members), createWriteStream(archive));
  const dir = path.join(base, 'x');
  await mkdir(dir);
  await run('tar', ['-xf', archive, '-C', dir, '--numeric-owner', '--same-permissions', ...(isRoot ? ['--same-owner'] : [])]);
  return { archive, dir };
}

const t0 = 1_700_000_000_123_456_789n;
const longDir = `${'d'.repeat(90)}/${'e'.repeat(90)}`;
const unicodeName = 'ünïcödé/日本語 ファイル.txt';
const owner = isRoot ? { uid: 1234, gid: 5678 } : { uid: process.getuid!(), gid: process.getgid!() };

/** One of everything the writer must get right, with the attributes GNU tar must reproduce. */
function specimen(): TarMember[] {
  const dir = (p: string, mode = 0o755, mtimeNs = t0): TarMember => ({ path: p, type: 'dir', mode, ...owner, mtimeNs });
  const file = (p: string, text: string, extra: Partial<TarMember> = {}): TarMember => ({
    path: p,
    type: 'file',
    mode: 0o644,
    ...owner,
    mtimeNs: t0,
    size: Buffer.byteLength(text),
    data: bytes(text),
    ...extra,
  });
  return [
    dir('', 0o750, 1_600_000_000_000_000_001n),
    dir('bin'),
    file('bin/tool', '#!/bin/sh\necho hi\n', { mode: 0o4755 }),
    file('bin/group-tool', 'x', { mode: 0o2711, mtimeNs: 1_000_000_000n }),
    dir('shared', 0o1777),
    dir('setgid-dir', 0o2775),
    dir('empty'),
    file('empty-file', ''),
    { path: 'no-data', type: 'file', mode: 0o600, ...owner, mtimeNs: t0 },
    file('old', 'before the epoch', { mtimeNs: -1_500_000_000n }),
    file('whole-second', 'w', { mtimeNs: 1_234_567_890_000_000_000n }),
    ...(isRoot ? [file('big-ids', 'ids', { uid: 3_000_000, gid: 4_000_000 })] : []),
    dir('d'.repeat(90)),
    dir(longDir),
    file(`${longDir}/${'f'.repeat(120)}.txt`, 'a long name'),
    { path: `${longDir}/hard-to-long`, type: 'hardlink', mode: 0o644, ...owner, mtimeNs: t0, linkTarget: `${longDir}/${'f'.repeat(120)}.txt` },
    dir('ünïcödé'),
    file(unicodeName, 'unicode'),
    { path: 'link-relative', type: 'symlink', mode: 0o777, ...owner, mtimeNs: t0, linkTarget: 'bin/tool' },
    { path: 'link-absolute', type: 'symlink', mode: 0o777, ...owner, mtimeNs: t0, linkTarget: '/etc/passwd' },
    { path: 'link-long', type: 'symlink', mode: 0o777, ...owner, mtimeNs: t0, linkTarget: `${'../'.repeat(10)}${'t'.repeat(120)}` },
    { path: 'link-unicode', type: 'symlink', mode: 0o777, ...owner, mtimeNs: t0, linkTarget: unicodeName },
    { path: 'hard', type: 'hardlink', mode: 0o4755, ...owner, mtimeNs: t0, linkTarget: 'bin/tool' },
    { path: 'fifo', type: 'fifo', mode: 0o640, ...owner, mtimeNs: t0 },
    ...(isRoot ? [{ path: 'null-device', type: 'char', mode: 0o666, ...owner, mtimeNs: t0, devMajor: 1, devMinor: 3 } as TarMember] : []),
  ];
}

describe('tarStream', () => {
  it('GNU tar extracts exactly what was given: modes, owners, ns mtimes, links, long and unicode names, empty files and folders', async () => {
    const members = specimen();
    const { archive, dir } = await extractWithGnuTar(members);
    // Folder mtimes are set by tar after their content (delay-directory-restore is its default for them).
    for (const m of members) {
      const full = m.path === '' ? dir : path.join(dir, m.path);
      const info = await lstat(full, { bigint: true });
      const what = `${m.type} ${JSON.stringify(m.path)}`;
      const kind = { file: info.isFile(), dir: info.isDirectory(), symlink: info.isSymbolicLink(), hardlink: info.isFile(), fifo: info.isFIFO(), char: info.isCharacterDevice(), block: info.isBlockDevice() }[m.type];
      assert.ok(kind, `${what}: wrong type on disk`);
      if (m.type === 'symlink') {
        assert.equal(await readlink(full), m.linkTarget, `${what}: target`);
      } else if (m.type === 'hardlink') {
        const target = await lstat(path.join(dir, m.linkTarget!), { bigint: true });
        assert.equal(info.ino, target.ino, `${what}: not a hard link of ${m.linkTarget}`);
        continue; // a hard link has its target's attributes
      } else {
        assert.equal(Number(info.mode & 0o7777n).toString(8), m.mode.toString(8), `${what}: mode`);
      }
      if (m.type !== 'symlink') assert.equal(info.mtimeNs, m.mtimeNs, `${what}: mtime (ns)`);
      if (isRoot) assert.deepEqual([Number(info.uid), Number(info.gid)], [m.uid, m.gid], `${what}: owner`);
      if (m.type === 'file') {
        const content = await readFile(full);
        assert.equal(content.length, m.size ?? 0, `${what}: size`);
      }
      if (m.type === 'char') assert.equal(info.rdev, BigInt((1 << 8) | 3), `${what}: device numbers`);
    }
    assert.equal(await readFile(path.join(dir, unicodeName), 'utf8'), 'unicode');
    // What GNU tar lists is the writer's naming: ./ for the root, ./path, folders with a trailing slash.
    const { stdout } = await run('tar', ['-tf', archive]);
    const names = stdout.trim().split('\n');
    assert.equal(names[0], './');
    assert.ok(names.includes('./empty/'));
    assert.ok(names.includes(`./${unicodeName}`));
    assert.ok(!names.some((n) => n.includes('PaxHeaders')), 'pax headers are read as headers, never as members');
    // Whole 10 KiB records, as GNU tar writes them.
    assert.equal((await lstat(archive)).size % 10240, 0);
  });

  it('a tree walked from disk extracts to the same tree, and `tar --diff` finds no difference', async () => {
    const src = tempDir('wsd-tar-src-');
    await mkdir(path.join(src, 'a/b/c'), { recursive: true });
    await writeFile(path.join(src, 'a/b/c/file.txt'), 'x'.repeat(100_000));
    await writeFile(path.join(src, 'a/small'), 'small');
    await writeFile(path.join(src, 'a/exact-block'), Buffer.alloc(512, 7));
    await writeFile(path.join(src, 'empty'), '');
    await link(path.join(src, 'a/small'), path.join(src, 'a/small-again'));
    await symlink('a/b', path.join(src, 'to-b'));
    await symlink('dangling-target', path.join(src, 'dangling'));
    await chmod(path.join(src, 'a/small'), 0o640);
    await utimes(path.join(src, 'a/small'), 1, 1_500_000_000.25);
    if (isRoot) await chown(path.join(src, 'a/b/c/file.txt'), 4321, 8765);
    const { archive, dir } = await extractWithGnuTar(treeMembers(src));
    assert.equal(firstDifference(await treeManifest(dir), await treeManifest(src)), undefined);
    for (const rel of ['a/small', 'a/b/c/file.txt', 'a', '']) {
      const [x, y] = await Promise.all([lstat(path.join(dir, rel), { bigint: true }), lstat(path.join(src, rel), { bigint: true })]);
      assert.equal(x.mtimeNs, y.mtimeNs, `${rel || '.'}: mtime (ns)`);
      if (isRoot) assert.deepEqual([x.uid, x.gid], [y.uid, y.gid], `${rel || '.'}: owner`);
    }
    // GNU tar's own verdict: every member compared with the tree it came from (contents, modes, owners, times, links).
    await run('tar', ['--diff', '--numeric-owner', '-f', archive, '-C', src]);
  });

  it('the project\'s TarInspector passes the stream through unchanged and counts every member', async () => {
    const members = specimen();
    const archive = await collect(members);
    const inspector = new TarInspector({ allowSpecialFiles: true, preserveSetuid: true, maxStreamBytes: archive.length });
    const out: Buffer[] = [];
    await pipeline(tarStream(listOf(specimen())), inspector, new Writable({ write: (chunk, _e, cb) => (out.push(chunk), cb()) }));
    assert.equal(inspector.members, members.length);
    assert.ok(inspector.reachedEnd);
    // Unchanged, up to the record after the end-of-archive block: the inspector drops zero padding tar never reads.
    const passed = Buffer.concat(out);
    assert.equal(Buffer.compare(passed, archive.subarray(0, passed.length)), 0);
    assert.ok(archive.subarray(passed.length).every((byte) => byte === 0), 'only zero padding was dropped');
  });

  it('the same members give the same bytes (no clock, no host names in the archive)', async () => {
    assert.equal(sha(await collect(specimen())), sha(await collect(specimen())));
  });

  for (const [what, chunks, size] of [
    ['more', ['abc', 'def'], 4],
    ['fewer', ['abc'], 4],
    ['no data at all', [], 4],
  ] as const) {
    it(`a file whose data yields ${what} bytes than its size fails the stream with DATA_LOSS, never a clean end`, async () => {
      const members: TarMember[] = [
        { path: 'ok', type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: t0, size: 2, data: bytes('ok') },
        {
          path: 'liar',
          type: 'file',
          mode: 0o644,
          uid: 0,
          gid: 0,
          mtimeNs: t0,
          size,
          data: () =>
            (async function* () {
              for (const c of chunks) yield Buffer.from(c);
            })(),
        },
        { path: 'after', type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: t0, size: 1, data: bytes('a') },
      ];
      const stream = tarStream(listOf(members));
      let ended = false;
      stream.on('end', () => (ended = true));
      await assert.rejects(
        (async () => {
          for await (const _ of stream);
        })(),
        (error: unknown) => isWsdError(error, 'DATA_LOSS') && /"liar" declares 4 bytes/.test((error as Error).message),
      );
      assert.equal(ended, false);
    });
  }

  for (const [what, member, first] of [
    ['a ".." segment', { path: 'a/../b' }, false],
    ['an absolute path', { path: '/etc/passwd' }, false],
    ['a trailing slash', { path: 'dir/' }, false],
    ['a leading ./', { path: './a' }, false],
    ['a root that is not first', { path: '', type: 'dir' }, false],
    ['a root that is a file', { path: '.' }, true],
    ['a mode beyond 0o7777', { mode: 0o10000 }, false],
    ['a negative uid', { uid: -1 }, false],
    ['a hard link out of the archive', { type: 'hardlink', linkTarget: '../x' }, false],
    ['a name that is not valid Unicode', { path: 'bad\uD800name' }, false],
  ] as const) {
    it(`refuses ${what} with DATA_LOSS`, async () => {
      const base: TarMember = { path: 'x', type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: t0, size: 0 };
      const members = [...(first ? [] : [{ ...base, path: '', type: 'dir' } as TarMember]), { ...base, ...member } as TarMember];
      await assert.rejects(collect(members), (error: unknown) => isWsdError(error, 'DATA_LOSS') && /refused/.test((error as Error).message));
    });
  }

  it('reads a file\'s data only as fast as the reader takes the stream (backpressure)', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 1);
    const total = 64;
    let produced = 0;
    const member: TarMember = {
      path: 'big',
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtimeNs: t0,
      size: total * chunk.length,
      data: () =>
        (async function* () {
          for (let i = 0; i < total; i++) {
            produced += chunk.length;
            yield chunk;
          }
        })(),
    };
    let consumed = 0;
    let most = 0;
    for await (const piece of tarStream(listOf([member]))) {
      consumed += (piece as Buffer).length;
      most = Math.max(most, produced - consumed);
    }
    assert.equal(produced, total * chunk.length);
    // Ahead of the reader by at most the stream's buffer and a chunk or two, never the whole 64 MiB.
    assert.ok(most <= 3 * chunk.length, `the writer ran ${most} bytes ahead of its reader`);
  });

  it('destroying the stream stops the member source and the file being read', async () => {
    let sourceClosed = false;
    let dataClosed = false;
    const members = (async function* () {
      try {
        yield {
          path: 'endless',
          type: 'file',
          mode: 0o644,
          uid: 0,
          gid: 0,
          mtimeNs: t0,
          size: 1024 ** 4,
          data: () =>
            (async function* () {
              try {
                for (;;) yield Buffer.alloc(65536);
              } finally {
                dataClosed = true;
              }
            })(),
        } as TarMember;
      } finally {
        sourceClosed = true;
      }
    })();
    const stream = tarStream(members);
    for await (const _ of stream) break; // leaving the loop destroys the stream
    await until(() => sourceClosed && dataClosed, 'the member source and the data iterable to be closed');
  });

  it('a file of 8 GiB and more gets its size in a pax record; GNU tar lists it and the member after it', async () => {
    const size = 8 * 1024 ** 3 + 3;
    const zeros = Buffer.alloc(64 * 1024 * 1024);
    const members: TarMember[] = [
      {
        path: 'huge',
        type: 'file',
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtimeNs: t0,
        size,
        data: () =>
          (async function* () {
            for (let left = size; left > 0; left -= zeros.length) yield left >= zeros.length ? zeros : zeros.subarray(0, left);
          })(),
      },
      { path: 'after', type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: t0, size: 5, data: bytes('after') },
    ];
    // A sparse file: zero chunks (recognised by their memory) become holes, so 8 GiB costs no disk and no writes.
    const archive = path.join(tempDir('wsd-tar-huge-'), 'huge.tar');
    const file = await open(archive, 'w');
    let position = 0;
    try {
      for await (const piece of tarStream(listOf(members))) {
        const b = piece as Buffer;
        if (b.buffer !== zeros.buffer) await file.write(b, 0, b.length, position);
        position += b.length;
      }
      await file.truncate(position);
    } finally {
      await file.close();
    }
    const { stdout } = await run('tar', ['-tvf', archive]);
    const lines = stdout.trim().split('\n');
    assert.equal(lines.length, 2, stdout);
    assert.match(lines[0]!, new RegExp(`\\s${size}\\s.*\\./huge$`));
    assert.match(lines[1]!, /\s5\s.*\.\/after$/);
  });
});
