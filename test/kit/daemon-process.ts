import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { packageRoot } from '../../core/config/package-root.js';

export const wsdBin = (): string => path.join(packageRoot(), 'bin', 'wsd.js');

export interface DaemonProcess {
  child: ChildProcess;
  /** Parsed JSON log lines so far. */
  logs: Array<Record<string, unknown>>;
  stderr: () => string;
  httpAddress: string;
  grpcAddress: string;
  /** Sends `signal` and resolves with the exit code (or the signal name for a kill). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/**
 * Runs `wsd run` as a real child process and waits for its `ready` log line. Rejects with the daemon's stderr and
 * log if it exits first.
 */
/** How long a test daemon may take to log `ready` (a loaded 2-core machine; starts take about a second). */
const startDeadlineMs = 120_000;

export async function startDaemonProcess(options: { args: string[]; cwd?: string; env?: NodeJS.ProcessEnv; launcher?: string[] }): Promise<DaemonProcess> {
  // `launcher` stands in for `node bin/wsd.js`, e.g. the container image's entrypoint script.
  const [command, ...launcherArgs] = options.launcher ?? [process.execPath, wsdBin()];
  const child = spawn(command!, [...launcherArgs, 'run', ...options.args], {
    cwd: options.cwd ?? process.cwd(),
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;

  const ready = new Promise<{ http: string; grpc: string }>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'ready') resolve({ http: String(entry.http), grpc: String(entry.grpc) });
      } catch {
        logs.push({ unparsed: line });
      }
    });
    exited.then(([code, signal]) =>
      reject(new Error(`wsd exited (${code ?? signal}) before ready.\nstderr: ${stderr}\nlog: ${logs.map((l) => JSON.stringify(l)).join('\n')}`)),
    );
  });
  // A daemon that never gets ready is killed, not left running behind a test that gave up on it.
  const deadline = setTimeout(() => child.kill('SIGKILL'), startDeadlineMs);
  const { http: httpAddress, grpc: grpcAddress } = await ready.finally(() => clearTimeout(deadline));
  return {
    child,
    logs,
    stderr: () => stderr,
    httpAddress,
    grpcAddress,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode!;
      child.kill(signal);
      const [code, sig] = await exited;
      return code ?? sig!;
    },
  };
}

/** Runs a wsd CLI command to completion. */
export async function runWsd(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; launcher?: string[] } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const [command, ...launcherArgs] = options.launcher ?? [process.execPath, wsdBin()];
  const child = spawn(command!, [...launcherArgs, ...args], {
    cwd: options.cwd ?? process.cwd(),
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code: code ?? -1, stdout, stderr };
}

/**
 * Runs a wsd CLI command on a pseudo-terminal (util-linux `script`), typing `input`: for what wsd does only when a
 * person is at a terminal (prompts, a progress line rewritten in place). stdout and stderr arrive merged, as a
 * terminal shows them. Fails with a clear message when `script` is missing.
 */
export async function runWsdInTerminal(args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; output: string }> {
  const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, wsdBin(), ...args].map(quote).join(' ');
  const child = spawn('script', ['--quiet', '--return', '--command', command, '/dev/null'], {
    env: { ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(options.input ?? '');
  const [code, error] = await Promise.race([
    once(child, 'exit') as Promise<[number | null]>,
    once(child, 'error').then(([e]) => [null, e as Error] as const),
  ]);
  if (error) throw new Error(`cannot run util-linux \`script\` for a pseudo-terminal (apt-get install bsdutils): ${error.message}`);
  return { code: code ?? -1, output: output + stderr };
}

/**
 * The initializers of a test daemon: all built-ins, with git and prebuild allowed to reach the test repositories
 * (file:// under the OS temp folder, plain http on 127.0.0.1), which the secure defaults refuse. Downloads keep
 * their defaults (loopback denied): tests that download allow 127.0.0.1 themselves.
 */
export const testInitializersConfig = `initializers:
  empty: {}
  backup: {}
  snapshot: {}
  composite: {}
  git: { protocols: [https, http, file], localRoots: [${JSON.stringify(os.tmpdir())}], allowedNetworks: [127.0.0.1/32], retryTimeout: 2s, initialRetryDelay: 100ms }
  prebuild: { protocols: [https, http, file], localRoots: [${JSON.stringify(os.tmpdir())}], allowedNetworks: [127.0.0.1/32] }
  download: {}
`;

/**
 * A config file for a test daemon: free ports on 127.0.0.1, data under `dir`, plaintext gRPC unless `api` gives
 * another api section body; `extra` is appended (and {@link testInitializersConfig} unless `extra` has its own).
 */
export function testDaemonConfig(dir: string, extra = '', api = '  address: 127.0.0.1:0\n  insecure: true\n'): string {
  const file = path.join(dir, 'wsd.yaml');
  const initializers = /^initializers:/m.test(extra) ? '' : testInitializersConfig;
  writeFileSync(file, `dataDir: ./data\nhttp:\n  address: 127.0.0.1:0\napi:\n${api}${extra}${initializers}`);
  return file;
}
