import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { startDaemonProcess, testDaemonConfig, type DaemonProcess } from '../../test/kit/daemon-process.js';
import { startBareServer } from './api-figures.js';
import { endWithBench, startBenchDaemon } from './bench-daemon.js';
import type { BenchContext } from './context.js';
import { line } from './report.js';
import { seconds, Series } from './stats.js';

/**
 * Start-to-ready (spawn until the `ready` line) of the daemon on an empty data folder and on one holding
 * `workspaces` ready workspaces (created through the API beforehand, as the daemon restores them from their state
 * files), against the bare grpc-js + HTTP server. The three alternate within each round, in a rotating order.
 */
export async function measureStart(ctx: BenchContext): Promise<void> {
  const dir = path.join(ctx.workDir, 'start');
  mkdirSync(dir);
  const count = ctx.options.workspaces;
  const populated = path.join(dir, 'populated');
  const setup = await startBenchDaemon(populated);
  try {
    const ids = Array.from({ length: count }, (_, i) => `ws-${i}`);
    // A few in flight: creating them is not what is measured, and each init fsyncs its state file.
    for (let i = 0; i < ids.length; i += 16) {
      await Promise.all(ids.slice(i, i + 16).map((id) => setup.client.initWorkspace({ id, metadata: { owner: 'bench-start', meta_id: id }, initializer: { empty: {} } })));
    }
  } finally {
    await setup.stop();
  }
  ctx.log(`start: ${count} workspaces created`);

  const series = new Series();
  const timeStart = async (name: string, start: () => Promise<DaemonProcess>) => {
    let started: DaemonProcess | undefined;
    series.add(name, await seconds(async () => (started = await start())));
    await started!.stop();
  };
  // The populated daemon restarts on the folder it was set up in: the config written there points at its data.
  const populatedConfig = path.join(populated, 'wsd.yaml');
  const runs: Array<[string, () => Promise<DaemonProcess>]> = [
    ['bare', () => startBareServer()],
    ['empty', () => {
      const fresh = path.join(dir, `empty-${series.has('empty') ? series.summary('empty').samples.length : 0}`);
      mkdirSync(fresh);
      return startDaemonProcess({ args: ['--config', testDaemonConfig(fresh, 'backup:\n  period: 0\n')], cwd: fresh }).then(endWithBench);
    }],
    ['populated', () => startDaemonProcess({ args: ['--config', populatedConfig], cwd: populated }).then(endWithBench)],
  ];
  for (let round = 0; round < ctx.options.rounds; round++) {
    for (let i = 0; i < runs.length; i++) {
      const [name, start] = runs[(round + i) % runs.length]!;
      await timeStart(name, start);
    }
    ctx.log(`start round ${round + 1}: bare ${(series.summary('bare').samples.at(-1)! * 1000).toFixed(0)} ms, wsd ${(series.summary('empty').samples.at(-1)! * 1000).toFixed(0)} ms, with ${count} workspaces ${(series.summary('populated').samples.at(-1)! * 1000).toFixed(0)} ms`);
  }
  const ms = (name: string) => {
    const s = series.summary(name);
    return { samples: s.samples.map((v) => v * 1000), median: s.median * 1000, min: s.min * 1000, max: s.max * 1000 };
  };
  const bare = { label: 'bare grpc-js + http', unit: 'ms' as const, summary: ms('bare') };
  ctx.lines.push(
    line({
      id: 'start.empty',
      what: 'start-to-ready, 0 workspaces',
      baseline: bare,
      wsd: { label: 'wsd run', unit: 'ms', summary: ms('empty') },
      ratio: { value: series.summary('empty').median / series.summary('bare').median, meaning: '(× bare)' },
      target: { text: '≤ 2', check: (r) => r <= 2 },
    }),
    line({
      id: 'start.populated',
      what: `start-to-ready, ${count} workspaces`,
      baseline: bare,
      wsd: { label: 'wsd run', unit: 'ms', summary: ms('populated') },
      ratio: { value: series.summary('populated').median / series.summary('bare').median, meaning: '(× bare)' },
      target: { text: '≤ 2.5', check: (r) => r <= 2.5 },
    }),
  );
  ctx.details.start = { workspaces: count, bareMs: ms('bare').samples, emptyMs: ms('empty').samples, populatedMs: ms('populated').samples };
}
