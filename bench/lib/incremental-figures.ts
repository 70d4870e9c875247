import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { filesAdded, startBenchDaemon, storedFiles, type BenchDaemon } from './bench-daemon.js';
import { interleaved, type BenchContext } from './context.js';
import { syncDisks, tarZstd } from './gnu-baselines.js';
import { line, type Side } from './report.js';
import { seconds, Series } from './stats.js';
import { applyChurn } from './tree.js';

/**
 * Incremental backups: one workspace and one GNU listed-incremental chain (`tar -g snar`) start from the same full
 * backup; every round changes 1 % of the files plus 1 MiB inside the large edit target, then backs up both ways.
 * Bytes are what the storage folder grew by (for tar: the incremental archive's size). Last, a backup of the
 * unchanged workspace: the issue wants it to upload nothing.
 */
export async function measureIncremental(ctx: BenchContext): Promise<void> {
  const tree = ctx.tree!;
  const dir = path.join(ctx.workDir, 'incremental');
  mkdirSync(dir);
  let daemon: BenchDaemon | undefined;
  try {
    daemon = await startBenchDaemon(path.join(dir, 'daemon'));
    const series = new Series();
    const id = 'incremental';
    const folder = await daemon.createFilled(id, 'bench-incremental', tree);
    const snar = path.join(dir, 'tar.snar');
    const archive = (name: string) => path.join(dir, `${name}.tar.zst`);
    const written: Record<string, Array<{ path: string; size: number }>> = {};
    const wsdBackup = async (prefix: string) => {
      const before = await storedFiles(daemon!.storageDir);
      series.add(`${prefix} s`, await seconds(() => daemon!.client.backupWorkspace(id)));
      const added = filesAdded(before, await storedFiles(daemon!.storageDir), daemon!.storageDir);
      series.add(`${prefix} bytes`, added.reduce((total, file) => total + file.size, 0));
      // What the last backup of each kind wrote, for the JSON: where the bytes of an incremental backup go.
      written[prefix] = added;
      await syncDisks();
    };
    const gnuBackup = async (prefix: string, name: string) => {
      const result = await tarZstd(folder, archive(name), { snar });
      series.add(`${prefix} s`, result.seconds);
      series.add(`${prefix} bytes`, result.bytes);
      rmSync(archive(name));
      await syncDisks();
    };
    await syncDisks();
    await gnuBackup('gnu full', 'level0');
    await wsdBackup('wsd full');
    for (let round = 0; round < ctx.options.rounds; round++) {
      const churn = applyChurn(folder, tree, `incremental ${round}`);
      await syncDisks();
      await interleaved(
        round,
        () => gnuBackup('gnu inc', `level${round + 1}`),
        () => wsdBackup('wsd inc'),
      );
      ctx.log(
        `incremental round ${round + 1} (${churn.files} files changed): tar -g ${series.summary('gnu inc s').samples.at(-1)!.toFixed(2)} s ${series.summary('gnu inc bytes').samples.at(-1)} B; ` +
          `wsd ${series.summary('wsd inc s').samples.at(-1)!.toFixed(2)} s ${series.summary('wsd inc bytes').samples.at(-1)} B`,
      );
    }
    // Nothing changed since the last round's backups.
    await gnuBackup('gnu unchanged', 'unchanged');
    await wsdBackup('wsd unchanged');

    const side = (name: string, label: string, unit: Side['unit']): Side => ({ label, unit, summary: series.summary(name) });
    const median = (name: string) => series.summary(name).median;
    ctx.lines.push(
      line({
        id: 'incremental.time',
        what: 'incremental backup after 1 % change: time',
        baseline: side('gnu inc s', 'tar -g | zstd + fsync', 's'),
        wsd: side('wsd inc s', 'BackupWorkspace', 's'),
        ratio: { value: median('gnu inc s') / median('wsd inc s'), meaning: '(>1 = wsd faster)' },
      }),
      line({
        id: 'incremental.time-vs-full',
        what: 'incremental time / full backup time',
        baseline: side('wsd full s', 'wsd full backup', 's'),
        wsd: side('wsd inc s', 'wsd incremental', 's'),
        ratio: { value: median('wsd inc s') / median('wsd full s'), meaning: '(of full)' },
        target: { text: '≤ 0.10', check: (r) => r <= 0.1 },
      }),
      line({
        id: 'incremental.bytes',
        what: 'incremental backup after 1 % change: bytes',
        baseline: side('gnu inc bytes', 'tar -g archive', 'bytes'),
        wsd: side('wsd inc bytes', 'bytes written to storage', 'bytes'),
        ratio: { value: median('wsd inc bytes') / median('gnu inc bytes'), meaning: '(wsd / GNU)' },
      }),
      line({
        id: 'incremental.bytes-vs-full',
        what: 'incremental bytes / full backup bytes',
        baseline: side('wsd full bytes', 'wsd full backup', 'bytes'),
        wsd: side('wsd inc bytes', 'wsd incremental', 'bytes'),
        ratio: { value: median('wsd inc bytes') / median('wsd full bytes'), meaning: '(of full)' },
        target: { text: '≤ 0.03', check: (r) => r <= 0.03 },
      }),
      line({
        id: 'incremental.unchanged',
        what: 'backup of an unchanged workspace: bytes',
        baseline: side('gnu unchanged bytes', 'tar -g archive', 'bytes'),
        wsd: side('wsd unchanged bytes', 'bytes written to storage', 'bytes'),
        target: { text: 'nothing uploaded', check: (_r, s) => s.median <= 0 },
        note: 'counts every new or rewritten object, manifests and the latest pointer included',
      }),
    );
    ctx.details.incremental = Object.fromEntries(
      ['gnu full s', 'gnu full bytes', 'wsd full s', 'wsd full bytes', 'gnu inc s', 'gnu inc bytes', 'wsd inc s', 'wsd inc bytes', 'gnu unchanged s', 'gnu unchanged bytes', 'wsd unchanged s', 'wsd unchanged bytes'].map(
        (name) => [name, series.summary(name).samples],
      ),
    );
    ctx.details.incrementalWritten = written;
  } finally {
    await daemon?.stop();
  }
}
