import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startMinio } from '../../test/kit/servers/minio.js';
import { bytesAdded, startBenchDaemon, storedFiles, type BenchDaemon } from './bench-daemon.js';
import { interleaved, MiB, type BenchContext } from './context.js';
import { syncDisks, tarZstd, untarZstd } from './gnu-baselines.js';
import { line, type Side } from './report.js';
import { memoryOf, peakMemoryDuring } from './rss.js';
import { seconds, Series } from './stats.js';

/**
 * Full backup (BackupWorkspace of a workspace holding the tree) against `tar | zstd -1 -T0` + fsync, and restore
 * (InitWorkspace from that backup, until ready) against `zstd -d | tar -x`, round after round on the same tree, the
 * side going first alternating. Each round backs up a fresh workspace of a fresh owner: a deduplicating store must
 * not get the round before for free. On local storage the daemon's RSS is sampled too (idle, peak per operation).
 */
/** How long the daemon is left alone while its idle RSS is read. */
const idleWindowMs = 60_000;

export async function measureBackupRestore(ctx: BenchContext, storage: 'local' | 'minio'): Promise<void> {
  const tree = ctx.tree!;
  const dir = path.join(ctx.workDir, `backup-restore-${storage}`);
  mkdirSync(dir);
  const minio = storage === 'minio' ? await startMinio({ dataDir: path.join(dir, 'minio-data') }) : undefined;
  let daemon: BenchDaemon | undefined;
  try {
    daemon = await startBenchDaemon(path.join(dir, 'daemon'), minio ? { minio } : {});
    const series = new Series();
    if (storage === 'local') {
      // Idle: started, ready, nothing asked of it yet. V8 gives start-up garbage back only once the process has
      // been idle a while, and when varies (135 → 100 MB after 10–20 s in one run, still 149 MB after 30 s in a
      // loaded one): the lowest RSS over a minute of idleness, and the RSS at ready beside it.
      series.add('rss at ready', memoryOf(daemon.pid).rssMB);
      let lowest = Infinity;
      for (let waited = 0; waited < idleWindowMs; waited += 1000) {
        await sleep(1000);
        lowest = Math.min(lowest, memoryOf(daemon.pid).rssMB);
      }
      series.add('rss idle', lowest);
    }
    const label = storage === 'local' ? '' : ' (MinIO)';
    for (let round = 0; round < ctx.options.rounds; round++) {
      const id = `full-${storage}-${round}`;
      const owner = `bench-${storage}-${round}`;
      const folder = await daemon.createFilled(id, owner, tree);
      const archive = path.join(dir, `gnu-${round}.tar.zst`);
      await syncDisks();
      await interleaved(
        round,
        async () => {
          const gnu = await tarZstd(folder, archive);
          series.add('gnu backup s', gnu.seconds);
          series.add('gnu archive bytes', gnu.bytes);
          await syncDisks();
        },
        async () => {
          const before = await storedFiles(daemon!.storageDir);
          const { result: time, daemonPeakMB, childrenPeakMB } = await peakMemoryDuring(daemon!.pid, () => seconds(() => daemon!.client.backupWorkspace(id)));
          series.add('wsd backup s', time);
          series.add('wsd backup bytes', bytesAdded(before, await storedFiles(daemon!.storageDir)));
          series.add('rss backup', daemonPeakMB);
          series.add('children backup', childrenPeakMB);
          await syncDisks();
        },
      );
      const gnuTarget = path.join(dir, `gnu-restore-${round}`);
      await interleaved(
        round,
        async () => {
          series.add('gnu restore s', await untarZstd(archive, gnuTarget));
          rmSync(gnuTarget, { recursive: true, force: true });
          await syncDisks();
        },
        async () => {
          const restored = `${id}-restored`;
          const { result: time, daemonPeakMB, childrenPeakMB } = await peakMemoryDuring(daemon!.pid, () => seconds(() => daemon!.restore(restored, owner, id)));
          series.add('wsd restore s', time);
          series.add('rss restore', daemonPeakMB);
          series.add('children restore', childrenPeakMB);
          await daemon!.dispose(restored);
          await syncDisks();
        },
      );
      rmSync(archive, { force: true });
      await daemon.dispose(id);
      ctx.log(
        `round ${round + 1}${label}: backup gnu ${series.summary('gnu backup s').samples.at(-1)!.toFixed(2)} s, wsd ${series.summary('wsd backup s').samples.at(-1)!.toFixed(2)} s; ` +
          `restore gnu ${series.summary('gnu restore s').samples.at(-1)!.toFixed(2)} s, wsd ${series.summary('wsd restore s').samples.at(-1)!.toFixed(2)} s`,
      );
    }
    if (storage === 'local') series.add('rss after', memoryOf(daemon.pid).rssMB);

    const side = (name: string, label: string, unit: Side['unit'] = 's'): Side => ({ label, unit, summary: series.summary(name) });
    const mibs = (name: string) => `${(tree.bytes / MiB / series.summary(name).median).toFixed(0)} MiB/s`;
    const backupRatio = series.summary('gnu backup s').median / series.summary('wsd backup s').median;
    const restoreRatio = series.summary('gnu restore s').median / series.summary('wsd restore s').median;
    const local = storage === 'local';
    ctx.lines.push(
      line({
        id: `${storage}.backup`,
        what: `full backup${label}`,
        baseline: side('gnu backup s', 'tar|zstd -1 -T0 + fsync'),
        wsd: side('wsd backup s', 'BackupWorkspace'),
        ratio: { value: backupRatio, meaning: '(>1 = wsd faster)' },
        ...(local ? { target: { text: '≥ 1.0', check: (r) => r >= 1 } } : {}),
        note: `tree ${(tree.bytes / MiB).toFixed(0)} MiB: GNU ${mibs('gnu backup s')}, wsd ${mibs('wsd backup s')}`,
      }),
      line({
        id: `${storage}.backup-bytes`,
        what: `full backup: bytes stored${label}`,
        baseline: side('gnu archive bytes', 'tar.zst size', 'bytes'),
        wsd: side('wsd backup bytes', 'bytes written to storage', 'bytes'),
        ratio: { value: series.summary('wsd backup bytes').median / series.summary('gnu archive bytes').median, meaning: '(wsd / GNU)' },
      }),
      line({
        id: `${storage}.restore`,
        what: `restore${label}`,
        baseline: side('gnu restore s', 'zstd -d|tar -x'),
        wsd: side('wsd restore s', 'InitWorkspace(backup)'),
        ratio: { value: restoreRatio, meaning: '(>1 = wsd faster)' },
        ...(local ? { target: { text: '≥ 1.0', check: (r) => r >= 1 } } : {}),
        note: `GNU ${mibs('gnu restore s')}, wsd ${mibs('wsd restore s')}`,
      }),
    );
    if (local) {
      ctx.lines.push(
        line({
          id: 'rss.idle',
          what: `daemon RSS idle (lowest in ${idleWindowMs / 1000} s after ready)`,
          wsd: side('rss idle', 'VmRSS', 'MB'),
          target: { text: '< 100 MB', check: (_r, s) => s.median < 100 },
          note: `${series.summary('rss at ready').median.toFixed(0)} MB right after ready`,
        }),
        line({
          id: 'rss.backup',
          what: 'daemon RSS peak, full backup',
          wsd: side('rss backup', 'VmHWM', 'MB'),
          target: { text: '< 200 MB (every round)', check: (_r, s) => s.max < 200 },
          note: `children (tar, zstd) peak sum ${series.summary('children backup').max.toFixed(0)} MB`,
        }),
        line({
          id: 'rss.restore',
          what: 'daemon RSS peak, restore',
          wsd: side('rss restore', 'VmHWM', 'MB'),
          target: { text: '< 200 MB (every round)', check: (_r, s) => s.max < 200 },
          note: `children (tar, zstd) peak sum ${series.summary('children restore').max.toFixed(0)} MB; RSS after the rounds ${series.summary('rss after').median.toFixed(0)} MB`,
        }),
      );
    }
    ctx.details[`backupRestore.${storage}`] = Object.fromEntries(
      ['gnu backup s', 'wsd backup s', 'gnu archive bytes', 'wsd backup bytes', 'gnu restore s', 'wsd restore s', 'rss at ready', 'rss idle', 'rss backup', 'rss restore', 'children backup', 'children restore', 'rss after']
        .filter((name) => series.has(name))
        .map((name) => [name, series.summary(name).samples]),
    );
  } finally {
    await daemon?.stop();
    await minio?.server.stop();
  }
}
