import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A test server (MinIO, fake-gcs-server, Azurite) run as a child process on 127.0.0.1 for the tests that need it.
 * Every start either returns a server that answered its readiness probe or throws an error that says which server,
 * why, and how to install it: a test that needs a server never passes silently without one.
 */
export interface TestServer {
  readonly name: string;
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly port: number;
  /** Ends the server (SIGTERM, then SIGKILL after 5 s). Idempotent. */
  stop(): Promise<void>;
  /** Ends the server abruptly (SIGKILL), as a crash or a network partition would look to a client. */
  kill(): Promise<void>;
}

export interface StartServerOptions {
  name: string;
  command: string;
  args: (port: number) => string[];
  env?: NodeJS.ProcessEnv;
  /** Resolves true once the server answers; polled every 100 ms. */
  ready: (endpoint: string) => Promise<boolean>;
  readyTimeoutMs?: number;
  /** Port to listen on; a free one by default (a restart after `kill` passes the old one). */
  port?: number;
}

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

/** The version `scripts/install-test-tools.sh` pins for `name` (its TOOLS list: `"<name> <version> <module>"`). */
export function pinnedToolVersion(name: string): string {
  const script = readFileSync(path.join(repositoryRoot, 'scripts', 'install-test-tools.sh'), 'utf8');
  const version = new RegExp(`^\\s*"${name} (\\S+) \\S+"`, 'm').exec(script)?.[1];
  if (!version) throw new Error(`scripts/install-test-tools.sh pins no version of ${name}`);
  return version;
}

/**
 * Path of a tool that `scripts/install-test-tools.sh` built into `.cache/tools/<name>-<version>/bin/<name>`
 * (by default the version the script pins). Throws a clear error when it is missing.
 */
export function cachedTool(name: string, version = pinnedToolVersion(name)): string {
  const bin = path.join(repositoryRoot, '.cache', 'tools', `${name}-${version}`, 'bin', name);
  if (!existsSync(bin)) {
    throw new Error(`${name} ${version} is not installed at ${bin}: run \`bash scripts/install-test-tools.sh\` (needs Go; .ci/run does it)`);
  }
  return bin;
}

/** A binary of an npm devDependency (`node_modules/.bin/<name>`); throws a clear error when it is missing. */
export function npmBin(name: string): string {
  const bin = path.join(repositoryRoot, 'node_modules', '.bin', name);
  if (!existsSync(bin)) throw new Error(`${name} is not installed at ${bin}: run \`npm ci\``);
  return bin;
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function startServer(options: StartServerOptions): Promise<TestServer> {
  const port = options.port ?? (await freePort());
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn(options.command, options.args(port), {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exited: string | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = `exited with ${signal ?? `code ${code}`}`;
      resolve();
    });
    child.once('error', (error) => {
      exited = `could not start: ${error.message}`;
      resolve();
    });
  });
  // A test process that dies without calling stop() must not leave a server behind.
  const onExit = () => signalGroup(child, 'SIGKILL');
  process.once('exit', onExit);

  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (exited) {
      process.off('exit', onExit);
      throw new Error(`${options.name} ${exited} before it was ready on ${endpoint}; its last output:\n${output}`);
    }
    if (await options.ready(endpoint).catch(() => false)) break;
    if (Date.now() > deadline) {
      signalGroup(child, 'SIGKILL');
      await exit;
      process.off('exit', onExit);
      throw new Error(`${options.name} was not ready on ${endpoint} within ${options.readyTimeoutMs ?? 60_000} ms; its last output:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const end = async (signal: NodeJS.Signals) => {
    if (!exited) {
      signalGroup(child, signal);
      const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), 5000);
      await exit;
      clearTimeout(timer);
    }
    process.off('exit', onExit);
  };
  return { name: options.name, endpoint, port, stop: () => end('SIGTERM'), kill: () => end('SIGKILL') };
}

/** GET `url` and resolve whether it answered with `status` (any 2xx by default). */
export async function answers(url: string, status?: number): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await response.arrayBuffer();
  return status === undefined ? response.ok : response.status === status;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}
