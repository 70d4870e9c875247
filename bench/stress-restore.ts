// Issue 11 "Stress": restores a generated tree's backup many times while other processes load the CPU and the disk,
// and records every failure with its code, message and cause chain, to find out whether a good archive can ever
// fail to restore (a spurious DATA_LOSS from ERR_STREAM_PREMATURE_CLOSE or anything else). Not part of npm test.
// Run: npm run build && node dist/bench/stress-restore.js [--rounds 50] [--size 1g] [--load 2] [--mode store|raw|both]
//      [--seed 1] [--verify]
import { spawn, type ChildProcess } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { extractArchive } from '../core/content/archive.js';
import { BackupStore } from '../core/content/backup-store.js';
import { isWsdError } from '../core/errors.js';
import { silentLogger } from '../core/observability/logger.js';
import { LocalStorageBackend } from '../plugins/storage/local/local-storage-backend.js';
import { treeManifest } from '../test/kit/tree-hash.js';

interface Options {
  rounds: number;
  sizeBytes: number;
  load: number;
  mode: 'store' | 'raw' | 'both';
  seed: string;
  verify: boolean;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { rounds: 50, sizeBytes: 1024 ** 3, load: 2, mode: 'store', seed: '1', verify: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === '--rounds') options.rounds = positiveInteger(value(), flag);
    else if (flag === '--size') options.sizeBytes = parseSize(value());
    else if (flag === '--load') options.load = Number.parseInt(value(), 10);
    else if (flag === '--mode') options.mode = oneOf(value(), ['store', 'raw', 'both'] as const, flag);
    else if (flag === '--seed') options.seed = value();
    else if (flag === '--verify') options.verify = true;
    else throw new Error(`unknown argument ${flag} (see the comment at the top of bench/stress-restore.ts)`);
  }
  if (!Number.isInteger(options.load) || options.load < 0) throw new Error('--load must be a whole number of processes (0: no load)');
  return options;
}

function positiveInteger(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got ${text}`);
  return n;
}

function oneOf<T extends string>(text: string, values: readonly T[], flag: string): T {
  if (!(values as readonly string[]).includes(text)) throw new Error(`${flag} must be one of ${values.join(', ')}, got ${text}`);
  return text as T;
}

/** "256m", "1g", "1.5g", or bytes. */
function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)([kmg]?)i?b?$/i.exec(text);
  if (!match) throw new Error(`--size must look like 256m or 1g, got ${text}`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(match[1]) * unit);
}

const options = parseArgs(process.argv.slice(2));
const mib = (bytes: number) => bytes / 1024 / 1024;

// ---- The tree: reproducible from the seed, built once and kept in a gitignored folder ----
const here = path.dirname(fileURLToPath(import.meta.url));
const cacheRoot = path.resolve(here, '..', '..', 'bench', '.cache', 'stress-restore');
const tree = path.join(cacheRoot, `tree-seed${options.seed}-${Math.round(mib(options.sizeBytes))}m`);

/** Deterministic bytes for a seed and a name (AES-128-CTR keystream): the same tree on every machine, fast. */
function seededBytes(name: string, length: number): Buffer {
  const key = createHash('sha256').update(`${options.seed}/${name}`).digest();
  return createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32)).update(Buffer.alloc(length));
}

/**
 * A workspace-like mix scaled to the size: small source-like files (~2–6 KiB, compressible; 20k for 1 GiB) in 100
 * folders, a `.git/objects` with many small incompressible objects, and 64 MiB files, alternately random and
 * text-like, until the size is reached.
 */
function buildTree(): void {
  const building = `${tree}.building`;
  rmSync(building, { recursive: true, force: true });
  const scale = options.sizeBytes / 1024 ** 3;
  const small = Math.max(200, Math.round(20_000 * scale));
  const objects = Math.max(100, Math.round(5_000 * scale));
  const line = Buffer.from('export function handler(request) { return respond(request.id, "ok"); }\n');
  const text = Buffer.concat(Array.from({ length: 1024 }, () => line));
  let written = 0;
  for (let d = 0; d < 100; d++) {
    const dir = path.join(building, 'src', `m${d}`);
    mkdirSync(dir, { recursive: true });
    for (let f = d; f < small; f += 100) {
      const size = 2048 + ((d * 131 + f * 17) % 4096);
      writeFileSync(path.join(dir, `f${f}.ts`), text.subarray(0, size));
      written += size;
    }
  }
  for (let o = 0; o < objects; o++) {
    const name = createHash('sha1').update(`${options.seed}/${o}`).digest('hex');
    const dir = path.join(building, '.git', 'objects', name.slice(0, 2));
    mkdirSync(dir, { recursive: true });
    const data = seededBytes(`object${o}`, 200 + (o % 1800));
    writeFileSync(path.join(dir, name.slice(2)), data);
    written += data.length;
  }
  const chunk = Math.min(64 * 1024 ** 2, Math.max(1024 ** 2, Math.floor(options.sizeBytes / 8)));
  mkdirSync(path.join(building, 'out'));
  for (let i = 0; written < options.sizeBytes; i++) {
    const length = Math.min(chunk, options.sizeBytes - written);
    writeFileSync(path.join(building, 'out', `blob${i}.bin`), i % 2 === 0 ? seededBytes(`blob${i}`, length) : Buffer.alloc(length, text));
    written += length;
  }
  // The rename makes a half-built tree (an interrupted run) impossible to reuse.
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(path.dirname(tree), { recursive: true });
  renameSync(building, tree);
}

/** Entries and file bytes of a tree: the cheap check that a restore brought everything back. */
function census(root: string): { entries: number; bytes: number } {
  let entries = 0;
  let bytes = 0;
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const full = path.join(dir, name);
      const info = lstatSync(full);
      entries++;
      if (info.isDirectory()) walk(full);
      else bytes += info.size;
    }
  };
  walk(root);
  return { entries, bytes };
}

// ---- Load: processes that spin a core and write to the same disk, until stopped ----
const loadScript = `
const { createHash, randomBytes } = require('node:crypto');
const fs = require('node:fs');
const file = process.argv[1];
const block = randomBytes(4 * 1024 * 1024);
let written = 0;
const fd = fs.openSync(file, 'w');
for (;;) {
  const until = Date.now() + 50;
  while (Date.now() < until) createHash('sha256').update(block).digest();
  fs.writeSync(fd, block);
  written += block.length;
  if (written >= 256 * 1024 * 1024) { fs.fsyncSync(fd); fs.ftruncateSync(fd, 0); written = 0; }
}`;

function startLoad(count: number, dir: string): ChildProcess[] {
  return Array.from({ length: count }, (_, i) => spawn(process.execPath, ['-e', loadScript, path.join(dir, `load-${i}.bin`)], { stdio: 'ignore' }));
}

function stopLoad(children: ChildProcess[]): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

// ---- Failures, with everything that says where they came from ----
interface Failure {
  round: number;
  mode: 'store' | 'raw';
  code: string;
  message: string;
  chain: string[];
  stack: string | undefined;
}

function describeFailure(round: number, mode: 'store' | 'raw', error: unknown): Failure {
  const chain: string[] = [];
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 10; e = (e as { cause?: unknown }).cause, depth++) {
    const err = e as Error & { code?: unknown };
    chain.push(`${err.name ?? typeof e}${err.code !== undefined ? ` [${String(err.code)}]` : ''}: ${err.message ?? String(e)}`);
  }
  const code = isWsdError(error) ? error.code : `${(error as { code?: unknown }).code ?? (error as Error).name ?? 'unknown'} (not a WsdError)`;
  return { round, mode, code, message: (error as Error).message ?? String(error), chain, stack: (error as Error).stack };
}

// ---- The run ----
if (!existsSync(tree)) {
  console.log(`building the tree (seed ${options.seed}, ${mib(options.sizeBytes).toFixed(0)} MiB) in ${tree} ...`);
  buildTree();
}
const expected = census(tree);
const work = path.join(cacheRoot, `run-${process.pid}`);
mkdirSync(work, { recursive: true });
const loadChildren: ChildProcess[] = [];
const cleanUp = () => {
  stopLoad(loadChildren);
  rmSync(work, { recursive: true, force: true });
};
process.once('SIGINT', () => {
  cleanUp();
  process.exit(130);
});

try {
  const storage = new LocalStorageBackend(path.join(work, 'storage'));
  const store = new BackupStore(storage, silentLogger);
  const target = { owner: 'stress', metaId: 'restore', instanceId: 'stress' };
  const backupStart = Date.now();
  const manifest = await store.write(target, tree, 'backup');
  console.log(
    `tree: ${expected.entries} entries, ${mib(expected.bytes).toFixed(0)} MiB; archive ${mib(manifest.size).toFixed(0)} MiB (${manifest.files} members, ` +
      `${mib(manifest.bytesUncompressed).toFixed(0)} MiB of tar) written in ${((Date.now() - backupStart) / 1000).toFixed(1)} s`,
  );
  const reference = options.verify ? JSON.stringify(await treeManifest(tree)) : undefined;

  const loadDir = path.join(work, 'load');
  mkdirSync(loadDir);
  loadChildren.push(...startLoad(options.load, loadDir));
  console.log(
    `${options.rounds} rounds, mode ${options.mode}, load: ${options.load} processes (spin + write), ${os.cpus().length} cores, load average ${os.loadavg()[0]!.toFixed(1)}`,
  );

  const failures: Failure[] = [];
  const seconds: number[] = [];
  let passes = 0;
  for (let round = 1; round <= options.rounds; round++) {
    const mode: 'store' | 'raw' = options.mode === 'both' ? (round % 2 === 1 ? 'store' : 'raw') : options.mode;
    const dir = path.join(work, `restore-${round}`);
    mkdirSync(dir);
    const start = Date.now();
    let outcome: string;
    try {
      if (mode === 'store') await store.restore(manifest, dir);
      // The bare pipeline: storage/local's stream straight into extractArchive (no digest, no staging folder).
      else await extractArchive((await storage.get({ key: manifest.object })).body, dir, { maxStreamBytes: manifest.bytesUncompressed });
      const got = census(dir);
      if (got.entries !== expected.entries || got.bytes !== expected.bytes) {
        throw new Error(`restored ${got.entries} entries / ${got.bytes} bytes, expected ${expected.entries} / ${expected.bytes}`);
      }
      if (reference !== undefined && JSON.stringify(await treeManifest(dir)) !== reference) throw new Error('restored tree differs from the source (--verify)');
      passes++;
      outcome = 'ok';
    } catch (error) {
      const failure = describeFailure(round, mode, error);
      failures.push(failure);
      outcome = `FAILED ${failure.code}: ${failure.chain.join(' <- ')}`;
    }
    const took = (Date.now() - start) / 1000;
    seconds.push(took);
    console.log(`round ${String(round).padStart(3)} ${mode.padEnd(5)} ${took.toFixed(1).padStart(6)} s  load avg ${os.loadavg()[0]!.toFixed(1).padStart(5)}  ${outcome}`);
    rmSync(dir, { recursive: true, force: true });
  }

  const byCode = new Map<string, number>();
  for (const f of failures) byCode.set(`${f.mode} ${f.code}`, (byCode.get(`${f.mode} ${f.code}`) ?? 0) + 1);
  const sorted = [...seconds].sort((a, b) => a - b);
  console.log('\nsummary');
  console.log(`  rounds ${options.rounds}, passed ${passes}, failed ${failures.length}`);
  for (const [code, count] of byCode) console.log(`  failures ${code}: ${count}`);
  console.log(`  seconds per restore: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)}, min ${sorted[0]!.toFixed(1)}, max ${sorted.at(-1)!.toFixed(1)}`);
  for (const f of failures) console.log(`\nround ${f.round} (${f.mode}): ${f.code}\n  ${f.chain.join('\n  <- ')}\n${f.stack ?? ''}`);
  process.exitCode = failures.length === 0 ? 0 : 1;
} finally {
  cleanUp();
}
