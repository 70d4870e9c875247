import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDaemonProcess, type DaemonProcess } from '../../test/kit/daemon-process.js';
import { endWithBench, startBenchDaemon, type BenchDaemon } from './bench-daemon.js';
import { interleaved, type BenchContext } from './context.js';
import { cpuSeconds } from './cpu.js';
import { runLoad } from './load-generator.js';
import { line } from './report.js';
import { Series } from './stats.js';

/** The baseline server of the API and start figures: a separate Node process, started like the daemon. */
export async function startBareServer(): Promise<DaemonProcess> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'bare-grpc-server.js');
  return endWithBench(await startDaemonProcess({ args: [], launcher: [process.execPath, script] }));
}

/**
 * IsWorkspaceExists at `apiConcurrency` calls in flight, from ghz, against the daemon and against a bare grpc-js
 * server on the same protos, alternating for `rounds` rounds after a warm-up of each. Both servers run all the
 * time, idle while the other is measured; the load generator shares the 2 cores with the server it drives.
 */
export async function measureApi(ctx: BenchContext): Promise<void> {
  const dir = path.join(ctx.workDir, 'api');
  mkdirSync(dir);
  let daemon: BenchDaemon | undefined;
  let bare: DaemonProcess | undefined;
  try {
    daemon = await startBenchDaemon(path.join(dir, 'daemon'));
    bare = await startBareServer();
    const { apiConcurrency: concurrency, apiConnections: connections, apiSeconds } = ctx.options;
    const load = (address: string, seconds = apiSeconds) => runLoad(address, { concurrency, connections, seconds });
    await load(bare.grpcAddress, 2);
    await load(daemon.daemon.grpcAddress, 2);
    const series = new Series();
    const measure = async (name: string, address: string, pid: number) => {
      const cpuBefore = cpuSeconds(pid);
      const result = await load(address);
      const cpu = cpuSeconds(pid) - cpuBefore;
      if (result.errors > 0) throw new Error(`${name}: ${result.errors} of ${result.count} calls failed`);
      series.add(`${name} rps`, result.requestsPerSecond);
      series.add(`${name} p50`, result.p50Ms);
      series.add(`${name} p99`, result.p99Ms);
      series.add(`${name} cpu per call`, (cpu / result.count) * 1e6);
      series.add(`${name} cpu cores`, cpu / apiSeconds);
    };
    for (let round = 0; round < ctx.options.rounds; round++) {
      await interleaved(
        round,
        () => measure('bare', bare!.grpcAddress, bare!.child.pid!),
        () => measure('wsd', daemon!.daemon.grpcAddress, daemon!.pid),
      );
      ctx.log(`api round ${round + 1}: bare ${series.summary('bare rps').samples.at(-1)!.toFixed(0)} req/s, wsd ${series.summary('wsd rps').samples.at(-1)!.toFixed(0)} req/s`);
    }
    const side = (name: string, label: string, unit: 'req/s' | 'ms' | 'µs') => ({ label, unit, summary: series.summary(name) });
    const median = (name: string) => series.summary(name).median;
    const at = `${concurrency} in flight`;
    ctx.lines.push(
      line({
        id: 'api.throughput',
        what: `IsWorkspaceExists throughput, ${at}`,
        baseline: side('bare rps', 'bare grpc-js', 'req/s'),
        wsd: side('wsd rps', 'wsd', 'req/s'),
        ratio: { value: median('wsd rps') / median('bare rps'), meaning: '(wsd / bare)' },
        target: { text: '≥ 0.95', check: (r) => r >= 0.95 },
        note: `ghz, ${connections} connections, ${apiSeconds} s per run`,
      }),
      line({
        id: 'api.p99',
        what: `IsWorkspaceExists p99 latency, ${at}`,
        baseline: side('bare p99', 'bare grpc-js', 'ms'),
        wsd: side('wsd p99', 'wsd', 'ms'),
        ratio: { value: median('wsd p99') / median('bare p99'), meaning: '(wsd / bare)' },
        target: { text: '≤ 1.05', check: (r) => r <= 1.05 },
      }),
      line({
        id: 'api.cpu',
        what: 'server CPU per IsWorkspaceExists call',
        baseline: side('bare cpu per call', 'bare grpc-js', 'µs'),
        wsd: side('wsd cpu per call', 'wsd', 'µs'),
        ratio: { value: median('wsd cpu per call') / median('bare cpu per call'), meaning: '(wsd / bare)' },
        note: `server CPU while loaded: bare ${median('bare cpu cores').toFixed(2)} cores, wsd ${median('wsd cpu cores').toFixed(2)} cores (below 1: the server got less than a core of the shared machine, or the load generator could not keep it busy)`,
      }),
      line({
        id: 'api.p50',
        what: `IsWorkspaceExists p50 latency, ${at}`,
        baseline: side('bare p50', 'bare grpc-js', 'ms'),
        wsd: side('wsd p50', 'wsd', 'ms'),
        ratio: { value: median('wsd p50') / median('bare p50'), meaning: '(wsd / bare)' },
      }),
    );
    ctx.details.api = Object.fromEntries(['bare rps', 'wsd rps', 'bare p50', 'wsd p50', 'bare p99', 'wsd p99', 'bare cpu per call', 'wsd cpu per call', 'bare cpu cores', 'wsd cpu cores'].map((name) => [name, series.summary(name).samples]));
  } finally {
    await bare?.stop();
    await daemon?.stop();
  }
}
