import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import { rawTar, type RawTarEntry } from '../../test/kit/tar-writer.js';
import { SeededRandom } from './seeded-random.js';
import { SourceText } from './source-text.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** Bumped whenever the generator changes what it writes: cached trees of another version are not reused. */
const generatorVersion = 2;

/** What was generated, saved beside the tree (`tree.json`) so a cached tree needs no walk. */
export interface TreeInfo {
  seed: string;
  /** The size asked for; `bytes` is what the files hold. */
  sizeBytes: number;
  root: string;
  files: number;
  bytes: number;
  /** Source-like files, relative to the root: what a 1 % change edits. */
  smallFiles: string[];
  gitObjects: number;
  largeFiles: string[];
  /** The large file edited in place by every change (200 MiB in trees of 512 MiB and more). */
  editTarget: { path: string; size: number };
}

/**
 * The tree for `seed` and `sizeBytes`, from `cacheDir` when it was generated before, else generated there. The same
 * seed and size give the same bytes on every run. Per GiB: ~20k source-like files (0.5–7.5 KiB), ~8k git loose
 * objects (zlib, as git writes them) under `.git`, and large files of 1 MiB blocks, half random, half text.
 */
export function ensureTree(cacheDir: string, seed: string, sizeBytes: number, log: (line: string) => void): TreeInfo {
  const dir = path.join(cacheDir, `v${generatorVersion}-${seed}-${sizeBytes}`);
  const infoFile = path.join(dir, 'tree.json');
  if (existsSync(infoFile)) {
    const info = JSON.parse(readFileSync(infoFile, 'utf8')) as TreeInfo;
    return { ...info, root: path.join(dir, 'tree') };
  }
  // Built aside and renamed into place: an interrupted generation is never taken for a cached tree.
  const building = path.join(cacheDir, `.building-${path.basename(dir)}-${process.pid}`);
  rmSync(building, { recursive: true, force: true });
  mkdirSync(path.join(building, 'tree'), { recursive: true });
  const started = Date.now();
  log(`generating the ${formatSize(sizeBytes)} tree for seed ${seed} in ${dir} (cached for later runs)`);
  const info = generate(path.join(building, 'tree'), seed, sizeBytes);
  writeFileSync(path.join(building, 'tree.json'), JSON.stringify({ ...info, root: undefined }));
  rmSync(dir, { recursive: true, force: true });
  renameSync(building, dir);
  log(`generated ${info.files} files, ${formatSize(info.bytes)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { ...info, root: path.join(dir, 'tree') };
}

function generate(root: string, seed: string, sizeBytes: number): TreeInfo {
  const random = new SeededRandom(seed, 'tree');
  const text = new SourceText(new SeededRandom(seed, 'vocabulary'));
  const scale = sizeBytes / GiB;
  let bytes = 0;

  // Small files go through GNU tar from a generated archive: Node spends ~0.5 ms per small file it creates.
  const smallFiles: string[] = [];
  const smallCount = Math.max(200, Math.round(20_000 * scale));
  let batch: RawTarEntry[] = [];
  const flush = () => {
    if (batch.length) execFileSync('tar', ['-x', '-C', root], { input: rawTar(batch), maxBuffer: 1 << 30 });
    batch = [];
  };
  for (let i = 0; i < smallCount; i++) {
    const folder = `src/pkg${Math.floor(i / 1000)}/mod${Math.floor(i / 100) % 10}`;
    if (i % 100 === 0) batch.push({ name: `${folder}/`, type: '5' });
    const name = `${folder}/file${i % 100}.${random.pick(['ts', 'ts', 'ts', 'json', 'md', 'css'])}`;
    const data = text.generate(random, random.int(512, 7680));
    batch.push({ name, data });
    smallFiles.push(name);
    bytes += data.length;
    if (batch.length >= 4000) flush();
  }
  flush();

  // A .git as git leaves it after a while: thousands of small zlib'd loose objects (they do not compress further).
  const gitCount = Math.max(100, Math.round(8_000 * scale));
  const gitDirs = new Set<string>();
  let head = '';
  for (let i = 0; i < gitCount; i++) {
    const content = text.generate(random, random.int(150, 3000));
    const object = Buffer.concat([Buffer.from(`blob ${content.length}\0`), content]);
    head = createHash('sha1').update(object).digest('hex');
    const dir = `.git/objects/${head.slice(0, 2)}`;
    if (!gitDirs.has(dir)) {
      gitDirs.add(dir);
      batch.push({ name: `${dir}/`, type: '5' });
    }
    const data = deflateSync(object);
    batch.push({ name: `${dir}/${head.slice(2)}`, data, mode: 0o444 });
    bytes += data.length;
    if (batch.length >= 4000) flush();
  }
  batch.push(
    { name: '.git/HEAD', data: 'ref: refs/heads/main\n' },
    { name: '.git/config', data: '[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n' },
    { name: '.git/refs/heads/main', data: `${head}\n` },
  );
  flush();

  // Large files: the edit target first, then 16–128 MiB files until the size is reached.
  mkdirSync(path.join(root, 'assets'));
  const largeFiles: string[] = [];
  let budget = Math.max(MiB, sizeBytes - bytes);
  const editSize = Math.max(1, Math.min(200, Math.floor((budget * 0.4) / MiB))) * MiB;
  const sizes = [editSize];
  budget -= editSize;
  while (budget >= MiB) {
    const size = Math.min(budget, random.int(16, 128) * MiB);
    sizes.push(size - (size % MiB) || MiB);
    budget -= sizes.at(-1)!;
  }
  sizes.forEach((size, index) => {
    const name = index === 0 ? `assets/edit-target-${size / MiB}m.bin` : `assets/blob${index}.bin`;
    const fd = openSync(path.join(root, name), 'w');
    try {
      for (let block = 0; block < size / MiB; block++) {
        writeSync(fd, random.next() < 0.5 ? random.bytes(MiB, index * 1_000_000 + block) : text.generate(random, MiB));
      }
    } finally {
      closeSync(fd);
    }
    largeFiles.push(name);
    bytes += size;
  });

  return {
    seed,
    sizeBytes,
    root,
    files: smallFiles.length + gitCount + 3 + largeFiles.length,
    bytes,
    smallFiles,
    gitObjects: gitCount,
    largeFiles,
    editTarget: { path: largeFiles[0]!, size: editSize },
  };
}

/** What {@link applyChurn} changed. */
export interface Churn {
  files: number;
  bytes: number;
}

/**
 * Changes `fraction` of the tree's files inside `folder` (a copy of the tree), reproducibly for `label`: source files
 * get new content of about their size (written aside and renamed over, as editors save), and 1 MiB is rewritten in
 * place inside the edit target. Never writes through a hard link into the cached tree: renames replace links, and
 * the edit target of a working copy must be a copy of its own (see {@link fillFolder}).
 */
export function applyChurn(folder: string, tree: TreeInfo, label: string, fraction = 0.01): Churn {
  const random = new SeededRandom(tree.seed, `churn ${label}`);
  const text = new SourceText(new SeededRandom(tree.seed, 'vocabulary'));
  const count = Math.max(1, Math.ceil(tree.files * fraction));
  const chosen = new Set<string>();
  while (chosen.size < Math.min(count, tree.smallFiles.length)) chosen.add(random.pick(tree.smallFiles));
  let bytes = 0;
  for (const name of chosen) {
    const file = path.join(folder, name);
    const data = text.generate(random, random.int(512, 7680));
    writeFileSync(`${file}.bench-new`, data);
    renameSync(`${file}.bench-new`, file);
    bytes += data.length;
  }
  const fd = openSync(path.join(folder, tree.editTarget.path), 'r+');
  try {
    writeSync(fd, random.bytes(MiB, 0), 0, MiB, random.int(0, tree.editTarget.size - MiB));
  } finally {
    closeSync(fd);
  }
  return { files: chosen.size + 1, bytes: bytes + MiB };
}

/**
 * Makes `folder` hold the tree: hard links to the cached files (instant, no GiB of writes between measurements),
 * except the edit target, which is copied because churn edits it in place.
 */
export function fillFolder(folder: string, tree: TreeInfo): void {
  execFileSync('cp', ['-al', '--', `${tree.root}/.`, `${folder}/`]);
  execFileSync('cp', ['--remove-destination', '--', path.join(tree.root, tree.editTarget.path), path.join(folder, tree.editTarget.path)]);
}

export function formatSize(bytes: number): string {
  if (bytes >= GiB) return `${(bytes / GiB).toFixed(bytes % GiB ? 2 : 0)} GiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(bytes % MiB ? 1 : 0)} MiB`;
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

/** `64m`, `1g`, `5g`, `512M`, `1.5g` → bytes. */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmg])i?b?$/i.exec(text.trim());
  if (!match) throw new Error(`--size: expected a size like 64m, 1g or 5g, got "${text}"`);
  const unit = { k: 1024, m: MiB, g: GiB }[match[2]!.toLowerCase() as 'k' | 'm' | 'g'];
  return Math.round(Number(match[1]) * unit);
}
