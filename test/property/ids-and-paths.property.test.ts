// Property tests: workspace ids and storage key segments from requests, and paths from requests resolved inside a
// folder on disk that holds planted symlinks (to a folder outside, to `..`, to `/`, dangling) and files.
//
// - An accepted id, joined to a working area, names a direct child of it: never `.`/`..`, never hidden, no separator.
//   A refused one is INVALID_ARGUMENT naming the field. `isValidWorkspaceId` agrees with the assertion.
// - `insideFolder` returns `path.resolve(dir, relative)` when it stays inside, INVALID_ARGUMENT naming the field otherwise.
// - `resolveInside(root, rel, 'f', { leaf })` throws a WsdError naming `f`, or returns that same path with every
//   existing component below root a real folder (lstat: no symlink, no file), the leaf as `leaf` says; nothing is
//   created outside root (nor in `/`).
// - `realFolderInside` creates nothing and returns only paths whose every component is a real folder.
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { workspacePrefix } from '../../core/content/backup-store.js';
import { insideFolder, realFolderInside, resolveInside } from '../../core/content/inside-folder.js';
import { isWsdError } from '../../core/errors.js';
import { assertValidKeySegment, assertValidWorkspaceId, isValidWorkspaceId, maxIdLength } from '../../core/workspace/workspace-record.js';
import { tempDir } from '../kit/temp-dir.js';
import { assertOnlyWsdError, assertOptions, caught, newRootEntries, rootEntries, walk } from './support.js';

/** Characters ids are made of, and the ones that must never get through. */
const idChar = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...'abcXYZ0129') },
  { weight: 3, arbitrary: fc.constantFrom('.', '-', '_') },
  { weight: 2, arbitrary: fc.constantFrom('/', '\\', '\u0000', ' ', '\n', ':', '~', '%', '*', 'é', '\u0130', '\u212a', '\u2024', '\uff0e', '\uff0f', '\u2215', '\u00a0', '\ud83d\ude00') },
);
const idArb = fc.oneof(
  fc.string({ unit: idChar, maxLength: 12 }),
  fc.string({ unit: idChar, minLength: maxIdLength - 2, maxLength: maxIdLength + 2 }),
  fc.constantFrom('.', '..', '...', '.a', 'a.', 'a..b', '-a', 'a-', '_', 'a/b', '/', 'a\u0000', '', ' ', 'CON', 'a'.repeat(maxIdLength), 'a'.repeat(maxIdLength + 1)),
  fc.string({ unit: 'binary', maxLength: 20 }),
);
const notAString = fc.oneof(fc.constantFrom<unknown>(undefined, null, 0, 1, true, [], {}, ['a'], { toString: () => 'a' }), fc.anything());

describe('property: workspace ids and key segments', () => {
  it('an accepted id names a direct, visible child of the working area; a refused one is INVALID_ARGUMENT with its field', () => {
    const area = tempDir('wsd-prop-area-');
    fc.assert(
      fc.property(idArb, fc.constantFrom('id', 'metadata.instance_id', 'metadata.owner'), (id, field) => {
        let error: unknown;
        try {
          assertValidWorkspaceId(id, field);
        } catch (e) {
          error = e;
        }
        assertOnlyWsdError(error, 'assertValidWorkspaceId');
        assert.equal(isValidWorkspaceId(id), error === undefined, 'isValidWorkspaceId agrees with assertValidWorkspaceId');
        if (error !== undefined) {
          assert.ok(isWsdError(error, 'INVALID_ARGUMENT'), String(error));
          assert.equal(error.field, field);
          return;
        }
        const joined = path.join(area, id);
        assert.equal(path.dirname(joined), area, 'a direct child of the area');
        assert.equal(path.basename(joined), id, 'joining changes nothing');
        assert.notEqual(id, '.');
        assert.notEqual(id, '..');
        assert.ok(!id.startsWith('.'), 'not hidden (no clash with .wsd-* files, no dot-only name)');
        assert.ok(!id.includes('/') && !id.includes('\\') && !id.includes('\u0000'));
        assert.ok(id.length >= 1 && id.length <= maxIdLength);
        assert.equal(path.resolve(area, id), joined, 'resolving agrees');
      }),
      assertOptions(0x1d5e0001, 3000),
    );
  });

  it('an accepted id really is a new child folder on disk', () => {
    const area = tempDir('wsd-prop-area-');
    fc.assert(
      fc.property(idArb.filter(isValidWorkspaceId), (id) => {
        const before = new Set(readdirSync(area));
        mkdirSync(path.join(area, id), { recursive: false });
        const added = readdirSync(area).filter((n) => !before.has(n));
        assert.deepEqual(added, [id]);
        rmSync(path.join(area, id), { recursive: true });
      }),
      assertOptions(0x1d5e0002, 300),
    );
  });

  it('owner and meta id segments keep storage keys apart: accepted ones round-trip through the key prefix', () => {
    fc.assert(
      fc.property(fc.oneof(idArb, notAString), fc.oneof(idArb, notAString), (owner, metaId) => {
        const refused = (value: unknown, field: string) => {
          try {
            assertValidKeySegment(value, field);
            return undefined;
          } catch (error) {
            assertOnlyWsdError(error, 'assertValidKeySegment');
            assert.ok(isWsdError(error, 'INVALID_ARGUMENT'));
            assert.equal(error.field, field);
            return error;
          }
        };
        const a = refused(owner, 'metadata.owner');
        const b = refused(metaId, 'metadata.meta_id');
        if (a || b) return;
        const parts = workspacePrefix({ owner: owner as string, metaId: metaId as string }).split('/');
        assert.deepEqual(parts, [owner, 'workspaces', metaId, ''], 'the prefix splits back into the same segments');
      }),
      assertOptions(0x1d5e0003, 2000),
    );
  });

  it('values that are not strings are INVALID_ARGUMENT, never a TypeError', () => {
    fc.assert(
      fc.property(notAString, (value) => {
        if (typeof value === 'string') return;
        const error = (() => {
          try {
            assertValidWorkspaceId(value, 'id');
          } catch (e) {
            return e;
          }
          return undefined;
        })();
        assert.ok(isWsdError(error, 'INVALID_ARGUMENT'), `got ${String(error)}`);
        assert.equal(error.field, 'id');
      }),
      assertOptions(0x1d5e0004, 500),
    );
  });
});

// ---------------------------------------------------------------------------------------------------------------

const segment = fc.constantFrom('evil', 'up', 'slash', 'file', 'dir', 'nested-evil', 'dangling', 'nonempty', 'self', 'new', 'x', '.', '..', '', '.git', 'é', ' ', '-x', 'n\u0000ul', '\n');
/** Relative (and some absolute) paths made of the planted names, plus random text. */
const relArb = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(fc.constantFrom('', '', '', '/'), fc.array(segment, { maxLength: 6 })).map(([lead, s]) => `${lead}${s.join('/')}`) },
  { weight: 2, arbitrary: fc.array(segment, { minLength: 1, maxLength: 6 }).map((s) => s.join('/')) },
  { weight: 1, arbitrary: fc.constantFrom('', '.', '..', '/', '//', 'a/../..', 'dir/../../x', 'evil/x', 'dir/nested-evil/x', 'slash/wsdprop-x', 'up/wsdprop-x', 'dangling/x', 'file/x', 'self/self/x', 'dir/./new', 'dir//new') },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
);


/** A fresh `<sandbox>/root` with planted content, and `<sandbox>/outside` that symlinks point to. */
function plantedRoot() {
  const sandbox = tempDir('wsd-prop-inside-');
  const root = path.join(sandbox, 'root');
  const outside = path.join(sandbox, 'outside');
  mkdirSync(root);
  mkdirSync(outside);
  symlinkSync(outside, path.join(root, 'evil'));
  symlinkSync('..', path.join(root, 'up'));
  symlinkSync('/', path.join(root, 'slash'));
  symlinkSync(path.join(outside, 'missing'), path.join(root, 'dangling'));
  symlinkSync('.', path.join(root, 'self'));
  writeFileSync(path.join(root, 'file'), 'x');
  mkdirSync(path.join(root, 'dir'));
  symlinkSync(outside, path.join(root, 'dir', 'nested-evil'));
  mkdirSync(path.join(root, 'nonempty'));
  writeFileSync(path.join(root, 'nonempty', 'keep'), 'x');
  return { sandbox, root, outside };
}

/** Every existing component of `target` below `root` is a real folder (the last may be missing, when allowed). */
function assertRealFolders(root: string, target: string, leaf: 'new-folder' | 'folder' | 'reader'): void {
  const segments = path.relative(root, target).split(path.sep).filter(Boolean);
  let current = root;
  for (const [i, s] of segments.entries()) {
    current = path.join(current, s);
    let info;
    try {
      info = lstatSync(current);
    } catch {
      assert.ok(i === segments.length - 1 && leaf === 'new-folder', `${path.relative(root, current)} is missing on the way to ${target}`);
      return;
    }
    assert.ok(info.isDirectory() && !info.isSymbolicLink(), `${path.relative(root, current)} is not a real folder (on the way to ${target})`);
  }
  if (leaf === 'new-folder' && target !== root) assert.deepEqual(readdirSync(target), [], 'a new-folder leaf is empty');
}

function assertNothingOutside(sandbox: string, outside: string, rootBefore: Set<string>): void {
  assert.deepEqual(readdirSync(sandbox).sort(), ['outside', 'root'], 'nothing created next to root');
  assert.deepEqual(walk(outside), [], 'nothing created through a symlink to the outside folder');
  assert.deepEqual(newRootEntries(rootBefore), [], 'nothing created in /');
}

describe('property: paths from requests inside a folder', () => {
  it('insideFolder: the resolved path, inside the folder, or INVALID_ARGUMENT with the field', () => {
    const dir = '/srv/wsd/workspaces/ws';
    fc.assert(
      fc.property(relArb, (rel) => {
        let result: string | undefined;
        let error: unknown;
        try {
          result = insideFolder(dir, rel, 'f');
        } catch (e) {
          error = e;
        }
        assertOnlyWsdError(error, 'insideFolder');
        const resolved = path.resolve(dir, rel);
        // Control characters (NUL breaks every system call) and over-long paths are refused wherever they lead.
        // eslint-disable-next-line no-control-regex
        const acceptable = !/[\u0000-\u001f\u007f]/.test(rel) && rel.length <= 4096;
        const inside = acceptable && !path.isAbsolute(rel) && (resolved === dir || resolved.startsWith(`${dir}/`));
        if (error !== undefined) {
          assert.ok(isWsdError(error, 'INVALID_ARGUMENT'));
          assert.equal(error.field, 'f');
          assert.ok(!inside, `refused a path that stays inside: ${JSON.stringify(rel)}`);
        } else {
          assert.ok(inside, `accepted ${JSON.stringify(rel)} -> ${result}`);
          assert.equal(result, resolved);
        }
      }),
      assertOptions(0x1d5e0010, 3000),
    );
  });

  // The same property for both leaves; each also lists paths that must get through, so a resolver that refused
  // everything could not pass.
  for (const [leaf, seed, runs, mustResolve] of [
    ['new-folder', 0x1d5e0011, 1000, ['', 'fresh', 'dir/new', 'a/b/c', 'dir/./new']],
    ['folder', 0x1d5e0012, 500, ['', 'dir', 'nonempty']],
  ] as const) {
    it(`resolveInside(${leaf}): a WsdError, or a path of real folders below root; nothing created outside`, { timeout: 120_000 }, async () => {
      const attempt = async (rel: string) => {
        const { sandbox, root, outside } = plantedRoot();
        const rootBefore = rootEntries();
        let result: string | undefined;
        const error = await caught(async () => {
          result = await resolveInside(root, rel, 'f', { leaf });
        });
        assertOnlyWsdError(error, `resolveInside(${JSON.stringify(rel)})`);
        if (error !== undefined) {
          assert.ok(isWsdError(error, 'INVALID_ARGUMENT') || isWsdError(error, 'FAILED_PRECONDITION'), String(error));
          assert.equal(error.field, 'f');
        } else {
          assert.equal(result, path.resolve(root, rel));
          assertRealFolders(root, result!, leaf);
        }
        assertNothingOutside(sandbox, outside, rootBefore);
        rmSync(sandbox, { recursive: true, force: true });
        return error;
      };
      for (const rel of mustResolve) assert.equal(await attempt(rel), undefined, `${JSON.stringify(rel)} must resolve`);
      await fc.assert(
        fc.asyncProperty(relArb, async (rel) => void (await attempt(rel))),
        assertOptions(seed, runs),
      );
    });
  }

  it('realFolderInside: creates nothing, and returns only paths of real folders', { timeout: 120_000 }, async () => {
    const { sandbox, root, outside } = plantedRoot();
    const before = walk(sandbox);
    const rootBefore = rootEntries();
    await fc.assert(
      fc.asyncProperty(relArb, async (rel) => {
        let result: string | undefined;
        const error = await caught(async () => {
          result = await realFolderInside(root, rel);
        });
        assertOnlyWsdError(error, `realFolderInside(${JSON.stringify(rel)})`);
        assert.equal(error, undefined, 'realFolderInside answers undefined rather than throwing');
        if (result !== undefined) {
          assert.equal(result, path.resolve(root, rel));
          assertRealFolders(root, result, 'reader');
        }
        assert.deepEqual(walk(sandbox), before, 'realFolderInside changed the tree');
        assertNothingOutside(sandbox, outside, rootBefore);
      }),
      assertOptions(0x1d5e0013, 1500),
    );
  });
});
