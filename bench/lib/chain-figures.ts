import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { startBenchDaemon, storedBytes, type BenchDaemon } from './bench-daemon.js';
import { interleaved, type BenchContext } from './context.js';
import { syncDisks } from './gnu-baselines.js';
import { line } from './report.js';
import { seconds, Series } from './stats.js';
import { applyChurn } from './tree.js';

/**
 * A workspace backed up, then changed by 1 % and backed up again `increments` times (keep: 3, the default). Two
 * figures come of it: the bytes stored once three backups are kept (after the 2nd change) against one full backup,
 * and the restore of the latest backup against the restore of a full backup of the same final tree (another owner,
 * backed up once), interleaved round by round.
 */
export async function measureChain(ctx: BenchContext): Promise<void> {
  const tree = ctx.tree!;
  const dir = path.join(ctx.workDir, 'chain');
  mkdirSync(dir);
  let daemon: BenchDaemon | undefined;
  try {
    daemon = await startBenchDaemon(path.join(dir, 'daemon'), { keep: 3 });
    const series = new Series();
    const chainOwner = 'bench-chain';
    const folder = await daemon.createFilled('chain', chainOwner, tree);
    // This daemon's storage holds only this workspace's backups until the reference below is made: its total is
    // the chain's, whatever the layout of the objects.
    const ownerBytes = () => storedBytes(daemon!.storageDir);
    await daemon.client.backupWorkspace('chain');
    const fullBytes = await ownerBytes();
    let keptThreeBytes = 0;
    for (let increment = 1; increment <= ctx.options.increments; increment++) {
      applyChurn(folder, tree, `chain ${increment}`);
      await daemon.client.backupWorkspace('chain');
      if (increment === 2) keptThreeBytes = await ownerBytes();
    }
    const finalBytes = await ownerBytes();
    ctx.log(`chain: ${ctx.options.increments} increments stored; owner holds ${finalBytes} B (one full backup ${fullBytes} B)`);

    // The reference: the same final tree, backed up once by an owner of its own.
    const flatOwner = 'bench-flat';
    await daemon.client.initWorkspace({ id: 'flat', metadata: { owner: flatOwner, meta_id: 'flat' }, initializer: { empty: {} } });
    // Hard links to the chain's files (none is edited from here on), all but the ready marker the init just wrote.
    const entries = readdirSync(folder).filter((name) => name !== '.gitpod');
    execFileSync('cp', ['-al', '--', ...entries.map((name) => path.join(folder, name)), `${daemon.folder('flat')}/`]);
    await daemon.client.backupWorkspace('flat');
    await syncDisks();

    for (let round = 0; round < ctx.options.rounds; round++) {
      const restore = async (name: string, owner: string, metaId: string) => {
        const id = `${metaId}-restored-${round}`;
        series.add(name, await seconds(() => daemon!.restore(id, owner, metaId)));
        await daemon!.dispose(id);
        await syncDisks();
      };
      await interleaved(
        round,
        () => restore('full', flatOwner, 'flat'),
        () => restore('chain', chainOwner, 'chain'),
      );
      ctx.log(`chain round ${round + 1}: restore of a full backup ${series.summary('full').samples.at(-1)!.toFixed(2)} s, after ${ctx.options.increments} increments ${series.summary('chain').samples.at(-1)!.toFixed(2)} s`);
    }

    const full = series.summary('full');
    const chain = series.summary('chain');
    ctx.lines.push(
      line({
        id: 'chain.restore',
        what: `restore after ${ctx.options.increments} increments`,
        baseline: { label: 'restore of a full backup', unit: 's', summary: full },
        wsd: { label: 'latest after increments', unit: 's', summary: chain },
        ratio: { value: chain.median / full.median, meaning: '(× full)' },
        target: { text: '≤ 1.2', check: (r) => r <= 1.2 },
      }),
      line({
        id: 'chain.kept-bytes',
        what: 'stored bytes, 3 kept backups (1 % churn)',
        baseline: { label: 'one full backup', unit: 'bytes', summary: { samples: [fullBytes], median: fullBytes, min: fullBytes, max: fullBytes } },
        wsd: { label: '3 backups kept', unit: 'bytes', summary: { samples: [keptThreeBytes], median: keptThreeBytes, min: keptThreeBytes, max: keptThreeBytes } },
        ratio: { value: keptThreeBytes / fullBytes, meaning: '(× full)' },
        target: { text: '≤ 1.1', check: (r) => r <= 1.1 },
        note: `after all ${ctx.options.increments + 1} backups (keep 3): ${(finalBytes / fullBytes).toFixed(2)}× one full backup`,
      }),
    );
    ctx.details.chain = { fullBytes, keptThreeBytes, finalBytes, increments: ctx.options.increments, restoreFull: full.samples, restoreChain: chain.samples };
  } finally {
    await daemon?.stop();
  }
}
