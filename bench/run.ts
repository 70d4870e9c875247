// `npm run bench`: wsd through its real gRPC API against GNU tar/zstd and a bare grpc-js server, same tree, same
// run, rounds interleaved; prints a table of ratios with the targets of issue 11 and writes bench/results/*.json.
// Never part of the test command. Method and bounds: docs/performance.md.
import { mkdirSync, statSync } from 'node:fs';
import os from 'node:os';
import { tempDir } from '../test/kit/temp-dir.js';
import { measureApi } from './lib/api-figures.js';
import { measureBackupRestore } from './lib/backup-restore-figures.js';
import { measureChain } from './lib/chain-figures.js';
import type { BenchContext, Group } from './lib/context.js';
import { measureIncremental } from './lib/incremental-figures.js';
import { parseOptions, usage } from './lib/options.js';
import { environment, formatMarkdown, formatTable, writeResults } from './lib/report.js';
import { measureStart } from './lib/start-figures.js';
import { ensureTree, formatSize } from './lib/tree.js';

const options = (() => {
  try {
    return parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${usage}`);
    process.exit(2);
  }
})();
if (options === 'help') {
  console.log(usage);
  process.exit(0);
}

const log = (line: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);
const wants = (...names: Group[]) => names.some((name) => options.only.has(name));
const needsTree = options.prepareOnly || wants('backup', 'restore', 'rss', 'incremental', 'chain', 'minio');

mkdirSync(options.cacheDir, { recursive: true });
const tree = needsTree ? ensureTree(options.cacheDir, options.seed, options.sizeBytes, log) : undefined;
if (options.prepareOnly) {
  log(`tree ready: ${tree!.root} (${tree!.files} files, ${formatSize(tree!.bytes)})`);
  process.exit(0);
}
// An interrupted run still ends its daemons and servers and removes its scratch folder: they hang on 'exit'.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
// Working copies are hard links into the cached tree, so the scratch folder must be on the cache's file system.
const sameDevice = statSync(os.tmpdir()).dev === statSync(options.cacheDir).dev;
const workDir = tempDir('wsd-bench-', sameDevice ? {} : { base: options.cacheDir });
const ctx: BenchContext = { options, ...(tree ? { tree } : {}), workDir, log, lines: [], details: {} };
if (tree) log(`tree: ${tree.files} files, ${formatSize(tree.bytes)} (${tree.smallFiles.length} source files, ${tree.gitObjects} git objects, ${tree.largeFiles.length} large files; edit target ${formatSize(tree.editTarget.size)})`);

const started = new Date();
const failures: Array<{ group: string; error: string }> = [];
const run = async (name: string, measure: () => Promise<void>) => {
  log(`${name}…`);
  try {
    await measure();
  } catch (error) {
    // One group failing (MinIO not installed, say) must not cost the figures of the others; it is reported.
    failures.push({ group: name, error: (error as Error).stack ?? String(error) });
    log(`${name} FAILED: ${(error as Error).message}`);
  }
};
if (wants('backup', 'restore', 'rss')) await run('backup/restore (local storage)', () => measureBackupRestore(ctx, 'local'));
if (wants('incremental')) await run('incremental', () => measureIncremental(ctx));
if (wants('chain')) await run(`restore after ${options.increments} increments, 3 kept backups`, () => measureChain(ctx));
if (wants('minio')) await run('backup/restore (MinIO)', () => measureBackupRestore(ctx, 'minio'));
if (wants('api')) await run('API throughput', () => measureApi(ctx));
if (wants('start')) await run('start-to-ready', () => measureStart(ctx));

console.log(`\nwsd bench, ${tree ? `${formatSize(tree.bytes)} tree (seed ${options.seed}), ` : ''}${options.rounds} round(s), ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}\n`);
console.log(formatTable(ctx.lines));
for (const l of ctx.lines.filter((l) => l.note)) console.log(`  ${l.what}: ${l.note}`);
const title = `${tree ? `${formatSize(tree.bytes)} tree, ` : ''}${options.rounds} round(s), ${started.toISOString().slice(0, 16)}Z, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`;
const notes = ctx.lines.filter((l) => l.note).map((l) => `- ${l.what}: ${l.note}`);
const file = writeResults(options.resultsDir, {
  started: started.toISOString(),
  finished: new Date().toISOString(),
  environment: environment(),
  options: { ...options, only: [...options.only] },
  tree: tree ? { ...tree, smallFiles: tree.smallFiles.length, root: undefined } : undefined,
  lines: ctx.lines,
  details: ctx.details,
  failures,
}, [`wsd bench: ${title}`, '', formatMarkdown(ctx.lines), '', ...notes].join('\n'));
console.log(`\nresults: ${file} (and the table in Markdown beside it)`);
for (const failure of failures) console.error(`\n${failure.group} failed:\n${failure.error}`);
process.exit(failures.length ? 1 : 0);
