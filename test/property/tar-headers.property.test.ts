// Property tests: malformed and hostile tar streams (test/property/tar-gen.ts) through TarInspector alone, and
// through the real restore path `extractArchive` (zstd -d | TarInspector | GNU tar) into `<sandbox>/ws`.
//
// - Only WsdErrors, whatever the stream (and whatever the inspector's options, invalid ones included).
// - GNU tar never sees a member the inspector did not inspect: `tar -t` of what the inspector let through lists
//   no more members than the inspector counted (a disagreement on framing would let a member past unchecked).
// - After a restore: nothing next to `ws` in the sandbox, nothing in the folder symlinks point to, the victim file
//   outside unchanged and not hard-linked, nothing new in `/`; no extracted regular file has setuid/setgid
//   (stripped by default); no tar or zstd process left.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { extractArchive, type ExtractLimits, type ExtractOptions } from '../../core/content/archive.js';
import { isWsdError } from '../../core/errors.js';
import { TarInspector, type TarInspectorOptions } from '../../core/content/tar-inspector.js';
import { tempDir } from '../kit/temp-dir.js';
import { assertOnlyWsdError, assertOptions, caught, killAll, leftoverProcesses, newRootEntries, rootEntries, walk, walkEntries } from './support.js';
import { tarArbitraries, type TarWorld } from './tar-gen.js';

const sandbox = tempDir('wsd-prop-tar-');
const outside = path.join(sandbox, 'outside');
const victims = path.join(sandbox, 'victims');
const victim = path.join(victims, 'victim');
mkdirSync(outside);
mkdirSync(victims);
chmodSync(sandbox, 0o755); // restores as a workspace user (`owner`) must reach `ws`
writeFileSync(victim, 'victim\n', { mode: 0o644 });
const victimInfo = statSync(victim);
const world: TarWorld = { outside, victim, victimRelative: '../victims/victim' };
const { streamArb } = tarArbitraries(world);

/** Undoes whatever a run managed to write outside the extraction folder. */
function resetWorld(inRoot: string[]): void {
  for (const name of readdirSync(sandbox)) if (!['outside', 'victims', 'ws'].includes(name)) rmSync(path.join(sandbox, name), { recursive: true, force: true });
  for (const name of readdirSync(outside)) rmSync(path.join(outside, name), { recursive: true, force: true });
  rmSync(victims, { recursive: true, force: true });
  mkdirSync(victims);
  writeFileSync(victim, 'victim\n', { mode: 0o644 });
  chmodSync(victim, victimInfo.mode & 0o7777);
  for (const name of inRoot) if (name.startsWith('wsdprop')) rmSync(path.join('/', name), { recursive: true, force: true });
}

/** Splits `bytes` into chunks of the given sizes (then the rest), as a network or zstd would deliver them. */
function chunked(bytes: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const size of sizes) {
    if (at >= bytes.length) break;
    out.push(bytes.subarray(at, at + Math.max(1, size)));
    at += Math.max(1, size);
  }
  if (at < bytes.length) out.push(bytes.subarray(at));
  return out;
}

/** Runs the inspector over `chunks`; what it let through, the error it failed with, and its member count. */
async function inspect(chunks: Buffer[], options: TarInspectorOptions): Promise<{ output: Buffer; error: unknown; members: number }> {
  let inspector: TarInspector;
  try {
    inspector = new TarInspector(options);
  } catch (error) {
    return { output: Buffer.alloc(0), error, members: 0 };
  }
  const out: Buffer[] = [];
  inspector.on('data', (chunk: Buffer) => out.push(Buffer.from(chunk)));
  const error = await new Promise<unknown>((resolve) => {
    inspector.once('error', resolve);
    inspector.once('end', () => resolve(undefined));
    (async () => {
      for (const chunk of chunks) {
        if (inspector.destroyed) return;
        if (!inspector.write(chunk)) await new Promise((r) => inspector.once('drain', r).once('error', r));
      }
      if (!inspector.destroyed) inspector.end();
    })().catch(resolve);
  });
  return { output: Buffer.concat(out), error, members: inspector.members };
}

/** Members GNU tar lists in `bytes` (one line each; tar escapes newlines in names), stopping where it fails. */
function tarListCount(bytes: Buffer): { count: number; names: string[] } {
  const result = spawnSync('tar', ['--list', '--file=-'], { input: bytes, maxBuffer: 64 * 1024 * 1024 });
  const names = result.stdout.toString('utf8').split('\n').filter((l) => l !== '');
  return { count: names.length, names };
}

/** Inspector options: mostly none, sometimes limits (rarely invalid ones, which the constructor refuses). */
const optionsArb: fc.Arbitrary<TarInspectorOptions> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({}) },
  {
    weight: 2,
    arbitrary: fc.record(
      {
        allowSpecialFiles: fc.boolean(),
        maxStreamBytes: fc.oneof({ weight: 8, arbitrary: fc.nat({ max: 40_000 }) }, { weight: 1, arbitrary: fc.constantFrom(0, Number.MAX_SAFE_INTEGER, -1, 1.5, Number.NaN) }),
        maxDataBytes: fc.oneof({ weight: 8, arbitrary: fc.nat({ max: 20_000 }) }, { weight: 1, arbitrary: fc.constantFrom(0, Number.MAX_SAFE_INTEGER, -1, Number.POSITIVE_INFINITY) }),
        dataLimitReason: fc.constant('the test limit'),
        preserveSetuid: fc.boolean(),
      },
      { requiredKeys: [] },
    ),
  },
);

/** Counts outcomes by the first words of the error message, for the test's diagnostic line. */
function tally(counts: Map<string, number>, error: unknown): void {
  const key = error === undefined ? 'ok' : isWsdError(error) ? `${error.code}: ${error.message.replace(/"[^"]*"/g, '…').replace(/\d+/g, 'N').slice(0, 60)}` : 'non-WsdError';
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function report(t: { diagnostic(message: string): void }, counts: Map<string, number>): void {
  for (const [key, count] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, 8)) t.diagnostic(`${count}× ${key}`);
}

/**
 * How a restore is run: plain (root keeps archived owners), bounded by the stream's own size (as a manifest records
 * it), by random limits, or as a workspace user (tar runs as `nobody`).
 */
const extractModeArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant<'plain' | 'exact' | 'owner'>('plain') },
  { weight: 1, arbitrary: fc.constantFrom<'plain' | 'exact' | 'owner'>('exact', 'owner') },
  { weight: 1, arbitrary: fc.record({ maxStreamBytes: fc.nat({ max: 30_000 }), maxDataBytes: fc.nat({ max: 20_000 }) }) },
);

function extractOptions(mode: 'plain' | 'exact' | 'owner' | ExtractLimits, streamBytes: number): ExtractOptions & ExtractLimits {
  if (mode === 'plain') return {};
  if (mode === 'exact') return { maxStreamBytes: streamBytes };
  if (mode === 'owner') return { owner: { uid: 65534, gid: 65534 } };
  return mode;
}

describe('property: hostile tar streams', () => {
  it('TarInspector: only WsdErrors, and GNU tar sees no member the inspector did not inspect', { timeout: 300_000 }, async (t) => {
    const counts = new Map<string, number>();
    t.after(() => report(t, counts));
    await fc.assert(
      fc.asyncProperty(streamArb, fc.array(fc.nat({ max: 1500 }), { maxLength: 8 }), optionsArb, async (stream, sizes, options) => {
        const { output, error, members } = await inspect(chunked(stream.bytes, sizes), options);
        tally(counts, error);
        assertOnlyWsdError(error, 'TarInspector');
        assert.ok(output.length <= stream.bytes.length, 'the inspector adds nothing');
        const listed = tarListCount(output);
        assert.ok(
          listed.count <= members,
          `GNU tar lists ${listed.count} members in what the inspector passed, the inspector inspected ${members}: ${JSON.stringify(listed.names.slice(0, 20))}`,
        );
      }),
      assertOptions(0x7a20001, 1200),
    );
  });

  it('extractArchive: only WsdErrors, nothing written outside the folder, no setuid file, no process left', { timeout: 600_000 }, async (t) => {
    const counts = new Map<string, number>();
    let extracted = 0;
    t.after(() => {
      report(t, counts);
      t.diagnostic(`entries extracted in all: ${extracted}`);
    });
    await fc.assert(
      fc.asyncProperty(streamArb, fc.array(fc.nat({ max: 3000 }), { maxLength: 4 }), extractModeArb, async (stream, sizes, mode) => {
        const ws = path.join(sandbox, 'ws');
        rmSync(ws, { recursive: true, force: true });
        mkdirSync(ws);
        const rootBefore = rootEntries();
        const compressed = spawnSync('zstd', ['-q', '-c'], { input: stream.bytes, maxBuffer: 1 << 28 }).stdout;
        const error = await caught(() => extractArchive(Readable.from(chunked(compressed, sizes)), ws, extractOptions(mode, stream.bytes.length)));
        tally(counts, error);
        extracted += walk(ws).length;
        assertOnlyWsdError(error, 'extractArchive');
        if (error !== undefined) assert.ok(isWsdError(error, 'DATA_LOSS') || isWsdError(error, 'RESOURCE_EXHAUSTED'), `${(error as Error).message}`);

        // Observe, put the world back (so that shrinking judges each candidate afresh), then judge.
        const next = readdirSync(sandbox).filter((name) => !['outside', 'victims', 'ws'].includes(name));
        const through = walk(outside);
        const besideVictim = readdirSync(victims).filter((name) => name !== 'victim');
        const now = statSync(victim);
        const victimText = readFileSync(victim, 'utf8');
        const inRoot = newRootEntries(rootBefore);
        const special = walkEntries(ws)
          .filter(({ info }) => (info.isFile() && (info.mode & 0o6000) !== 0) || !(info.isFile() || info.isDirectory() || info.isSymbolicLink()))
          .map(({ rel, info }) => `${rel} (mode ${info.mode.toString(8)})`);
        const left = await leftoverProcesses([ws]);
        killAll(left);
        resetWorld(inRoot);

        assert.deepEqual(next, [], 'written next to the extraction folder');
        assert.deepEqual(through, [], 'written into the folder a symlink points to');
        assert.deepEqual(besideVictim, [], 'written next to the victim file');
        assert.equal(victimText, 'victim\n', 'the victim file outside was written through a link');
        assert.equal(now.nlink, 1, 'the victim file outside was hard-linked into the folder');
        assert.equal(now.mode, victimInfo.mode, 'the victim file outside changed mode');
        assert.equal(now.uid, victimInfo.uid, 'the victim file outside changed owner');
        assert.deepEqual(inRoot, [], 'written into /');
        assert.deepEqual(special, [], 'extracted a setuid/setgid file, a device or a fifo');
        assert.deepEqual(left.map((p) => `${p.pid} (ppid ${p.ppid}): ${p.cmdline}`), [], 'tar or zstd left running');
      }),
      assertOptions(0x7a20002, 300),
    );
  });
});
