import { spawn, type ChildProcess } from 'node:child_process';
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
  /** Sends `signal` and resolves with the exit code (or the signal name for a kill). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/**
 * Runs `wsd run` as a real child process and waits for its `ready` log line. Rejects with the daemon's stderr and
 * log if it exits first.
 */
export async function startDaemonProcess(options: { args: string[]; cwd?: string; env?: NodeJS.ProcessEnv }): Promise<DaemonProcess> {
  const child = spawn(process.execPath, [wsdBin(), 'run', ...options.args], {
    cwd: options.cwd ?? process.cwd(),
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;

  const ready = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'ready') resolve(String(entry.http));
      } catch {
        logs.push({ unparsed: line });
      }
    });
    exited.then(([code, signal]) =>
      reject(new Error(`wsd exited (${code ?? signal}) before ready.\nstderr: ${stderr}\nlog: ${logs.map((l) => JSON.stringify(l)).join('\n')}`)),
    );
  });
  const httpAddress = await ready;
  return {
    child,
    logs,
    stderr: () => stderr,
    httpAddress,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode!;
      child.kill(signal);
      const [code, sig] = await exited;
      return code ?? sig!;
    },
  };
}

/** Runs a wsd CLI command to completion. */
export async function runWsd(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [wsdBin(), ...args], {
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
