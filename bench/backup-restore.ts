// Backup and restore throughput of wsd's archive pipeline on a generated ~1 GiB tree, next to GNU tar | zstd on the
// same tree in the same run. Run: npm run build && node dist/bench/backup-restore.js [MiB] (default 1024).
import { execFileSync, execSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BackupStore } from '../core/content/backup-store.js';
import { silentLogger } from '../core/observability/logger.js';
import { LocalStorageBackend } from '../plugins/storage/local/local-storage-backend.js';
import { rawTar, type RawTarEntry } from '../test/kit/tar-writer.js';
import { tempDir } from '../test/kit/temp-dir.js';

const totalMiB = Number(process.argv[2] ?? 1024);
const dir = tempDir('wsd-bench-backup-');
const tree = path.join(dir, 'tree');
mkdirSync(tree);

// A workspace-like mix: 20k small source-like files (~4 KiB, compressible), then large files, half text-like,
// half random (build outputs, images) until the total is reached.
const smallCount = 20_000;
const text = Buffer.from('export function handler(request) { return respond(request.id, "ok"); }\n'.repeat(64));
const entries: RawTarEntry[] = [{ name: 'src/', type: '5' }];
for (let d = 0; d < 100; d++) {
  entries.push({ name: `src/m${d}/`, type: '5' });
  for (let f = 0; f < smallCount / 100; f++) entries.push({ name: `src/m${d}/f${f}.ts`, data: text.subarray(0, 2048 + ((d * 131 + f * 17) % 4096)) });
}
execFileSync('tar', ['-x', '-C', tree], { input: rawTar(entries), maxBuffer: 1 << 30 });
const bigDir = path.join(tree, 'out');
mkdirSync(bigDir);
const chunk = 64 * 1024 * 1024;
let written = smallCount * 4096;
for (let i = 0; written < totalMiB * 1024 * 1024; i++) {
  writeFileSync(path.join(bigDir, `blob${i}.bin`), i % 2 === 0 ? randomBytes(chunk) : Buffer.alloc(chunk, text));
  written += chunk;
}
const bytes = Number(execSync(`du -sb ${tree}`).toString().split('\t')[0]);
const mib = bytes / 1024 / 1024;
execSync('sync');

const time = async (fn: () => unknown) => {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
};
const report = (label: string, seconds: number) => {
  console.log(`${label.padEnd(34)} ${seconds.toFixed(2).padStart(7)} s ${(mib / seconds).toFixed(0).padStart(6)} MiB/s`);
  return seconds;
};

console.log(`tree: ${mib.toFixed(0)} MiB in ${smallCount} small + ${Math.round((written - smallCount * 4096) / chunk)} large files; 2 cores; same disk for tree, storage and restores`);
const baselineArchive = path.join(dir, 'baseline.tar.zst');
report('GNU tar | zstd -1 -T0 > file', await time(() => execSync(`tar -cf - -C ${tree} . | zstd -q -1 -T0 -o ${baselineArchive}`, { shell: '/bin/bash' })));
rmSync(baselineArchive);
execSync('sync');
// wsd's put fsyncs before it returns (a backup must survive a crash), so the fair baseline does too.
const gnuBackup = report('... same, then fsync (baseline)', await time(() => execSync(`tar -cf - -C ${tree} . | zstd -q -1 -T0 -o ${baselineArchive} && sync ${baselineArchive}`, { shell: '/bin/bash' })));
const store = new BackupStore(new LocalStorageBackend(path.join(dir, 'storage')), silentLogger);
let manifest!: Awaited<ReturnType<BackupStore['write']>>;
const wsdBackup = report('wsd backup (BackupStore → local)', await time(async () => (manifest = await store.write({ owner: 'bench', metaId: 'b', instanceId: 'b' }, tree, 'backup'))));
execSync('sync');

const gnuTarget = path.join(dir, 'gnu-restore');
mkdirSync(gnuTarget);
const gnuRestore = report('zstd -d | tar -x', await time(() => execSync(`zstd -q -d -c ${baselineArchive} | tar -xf - -C ${gnuTarget}`, { shell: '/bin/bash' })));
rmSync(gnuTarget, { recursive: true, force: true });
execSync('sync');
const wsdTarget = path.join(dir, 'wsd-restore');
mkdirSync(wsdTarget);
const wsdRestore = report('wsd restore (verify + inspect + tar)', await time(() => store.restore(manifest, wsdTarget)));

console.log(`archive: ${(manifest.size / 1024 / 1024).toFixed(0)} MiB (${((manifest.size / bytes) * 100).toFixed(0)}% of the tree), ${manifest.files} entries`);
console.log(`ratios (wsd / GNU, higher is better): backup ${(gnuBackup / wsdBackup).toFixed(2)}, restore ${(gnuRestore / wsdRestore).toFixed(2)}`);
