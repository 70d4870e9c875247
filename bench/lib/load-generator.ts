import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../core/config/package-root.js';
import { protoDir } from '../../core/api/proto.js';

/** The ghz that scripts/install-bench-tools.sh pins and builds into .cache/tools/ghz-<version>/bin/ghz. */
export function ghzBinary(): string {
  const script = readFileSync(path.join(packageRoot(), 'scripts', 'install-bench-tools.sh'), 'utf8');
  const version = /^\s*"ghz (\S+) \S+"/m.exec(script)?.[1];
  if (!version) throw new Error('scripts/install-bench-tools.sh pins no version of ghz');
  const bin = path.join(packageRoot(), '.cache', 'tools', `ghz-${version}`, 'bin', 'ghz');
  if (!existsSync(bin)) throw new Error(`ghz ${version} is not installed at ${bin}: run \`bash scripts/install-bench-tools.sh\` (needs Go)`);
  return bin;
}

export interface LoadResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Calls answered OK. */
  count: number;
  /** Calls that failed, except those cut when the run's time was up (see {@link runLoad}). */
  errors: number;
}

/**
 * Drives IsWorkspaceExists at `address` with `concurrency` calls in flight for `seconds`, from ghz (Go: a Node client
 * on the same 2 cores could not saturate even the bare server). Calls spread over `connections` HTTP/2 connections.
 */
export async function runLoad(address: string, options: { concurrency: number; seconds: number; connections: number }): Promise<LoadResult> {
  const args = [
    '--insecure',
    '--proto', path.join(protoDir(), 'wsdaemon', 'daemon.proto'),
    '--import-paths', protoDir(),
    '--call', 'wsdaemon.WorkspaceContentService.IsWorkspaceExists',
    '--data', JSON.stringify({ id: 'bench-no-such-workspace' }),
    '--concurrency', String(options.concurrency),
    '--connections', String(options.connections),
    '--duration', `${options.seconds}s`,
    '--total', '0',
    '--format', 'json',
    address,
  ];
  const child = spawn(ghzBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`ghz failed (${code}): ${stderr.trim() || stdout.slice(0, 2000)}`);
  const report = JSON.parse(stdout) as {
    count: number;
    /** Nanoseconds. */
    total: number;
    latencyDistribution?: Array<{ percentage: number; latency: number }>;
    statusCodeDistribution?: Record<string, number>;
  };
  const percentile = (p: number) => (report.latencyDistribution?.find((d) => d.percentage === p)?.latency ?? NaN) / 1e6;
  const codes = report.statusCodeDistribution ?? {};
  const ok = codes.OK ?? 0;
  // When the time is up ghz closes its connections under the calls still in flight, which end Unavailable: up to
  // one per call in flight is the end of the run, not a failure of the server.
  const failed = report.count - ok;
  const cut = Math.min(codes.Unavailable ?? 0, options.concurrency);
  return { requestsPerSecond: ok / (report.total / 1e9), p50Ms: percentile(50), p99Ms: percentile(99), count: ok, errors: failed - cut };
}
