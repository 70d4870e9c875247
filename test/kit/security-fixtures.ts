/**
 * Helpers of the security regression suite (test/security): a daemon with a given initializer policy, planted
 * repositories (symlinks, git config), marker files that a command would create, and a small HTTP server that
 * counts what reaches it. Everything listens on 127.0.0.1 only.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { WsdClient, errorField } from '../../core/api/client.js';
import { startDaemonProcess, type DaemonProcess } from './daemon-process.js';
import { sh } from './git-fixtures.js';

/** Settings of the initializers under test; anything not given keeps its secure default. */
export interface InitializerPolicy {
  git?: { protocols?: string[]; localRoots?: string[]; extraConfigKeys?: string[]; allowedNetworks?: string[] };
  download?: { allowedNetworks?: string[]; deniedNetworks?: string[]; maxBytes?: number };
}

/**
 * The `initializers:` section for `policy`. Retries are short (a refused request must fail fast, and the suite has
 * a time budget); prebuild shares git's policy.
 */
export function initializersSection(policy: InitializerPolicy): string {
  const git = { retryTimeout: '2s', initialRetryDelay: '100ms', ...(policy.git ?? {}) };
  const prebuild = { ...(policy.git ?? {}) };
  delete (prebuild as { extraConfigKeys?: unknown }).extraConfigKeys;
  const download = { attempts: 1, initialRetryDelay: '100ms', ...(policy.download ?? {}) };
  const json = (v: unknown) => JSON.stringify(v);
  return `initializers:\n  empty: {}\n  backup: {}\n  snapshot: {}\n  composite: {}\n  git: ${json(git)}\n  prebuild: ${json(prebuild)}\n  download: ${json(download)}\n`;
}

/** Where the daemon keeps the state file of workspace `id`. */
export function stateFile(dataDir: string, id: string): string {
  return path.join(dataDir, 'state', `${id}.json`);
}

export interface TestDaemon {
  dir: string;
  config: string;
  dataDir: string;
  workingArea: string;
  daemon: DaemonProcess;
  client: WsdClient;
  folder(id: string): string;
  /** Every log line and stderr so far, as one text. */
  output(): string;
  /** Stops the daemon (SIGTERM unless told) and closes the client. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts a new daemon on the same config (after `stop`). */
  restart(): Promise<void>;
}

/** A daemon on 127.0.0.1 with data under `dir`, debug logging (so that the logs tested are the most talkative). */
export async function startTestDaemon(dir: string, policy: InitializerPolicy = {}): Promise<TestDaemon> {
  const config = path.join(dir, 'wsd.yaml');
  writeFileSync(
    config,
    `dataDir: ./data\nlog:\n  level: debug\nhttp:\n  address: 127.0.0.1:0\napi:\n  address: 127.0.0.1:0\n  insecure: true\n${initializersSection(policy)}`,
  );
  const dataDir = path.join(dir, 'data');
  const start = async () => {
    const daemon = await startDaemonProcess({ args: ['--config', config], cwd: dir });
    return { daemon, client: new WsdClient({ address: daemon.grpcAddress }) };
  };
  let current = await start();
  const previous: DaemonProcess[] = [];
  const handle: TestDaemon = {
    dir,
    config,
    dataDir,
    workingArea: path.join(dataDir, 'workspaces'),
    get daemon() {
      return current.daemon;
    },
    get client() {
      return current.client;
    },
    folder: (id) => path.join(dataDir, 'workspaces', id),
    output: () => [...previous, current.daemon].map((d) => `${JSON.stringify(d.logs)}\n${d.stderr()}`).join('\n'),
    async stop(signal = 'SIGTERM') {
      current.client.close();
      await current.daemon.stop(signal);
    },
    async restart() {
      previous.push(current.daemon);
      current = await start();
    },
  };
  return handle;
}

/** How a call ended: its error, or undefined when it succeeded. Nothing is asserted yet (check for harm first). */
export function settle(promise: Promise<unknown>): Promise<ServiceError | undefined> {
  return promise.then(
    () => undefined,
    (error: ServiceError) => error,
  );
}

/** `succeeded`, or `CODE: details`, for messages. */
export function outcomeText(error: ServiceError | undefined): string {
  return error ? `${status[error.code] ?? error.code}: ${error.details}` : 'succeeded';
}

/** Asserts that a settled call failed with `code` (and `field` in the `wsd-field` trailer, `message` in its details). */
export function assertRefusal(error: ServiceError | undefined, code: status, options: { field?: string; message?: RegExp } = {}, what = 'the call'): asserts error is ServiceError {
  assert.ok(error, `${what}: expected ${status[code]}, but it succeeded`);
  assert.equal(error.code, code, `${what}: expected ${status[code]}, got ${outcomeText(error)}`);
  if (options.field) assert.equal(errorField(error), options.field, `${what}: field at fault (details: ${error.details})`);
  if (options.message) assert.match(error.details, options.message);
}

/** Asserts that `promise` fails with `code` (and `field` in the `wsd-field` trailer); returns the error. */
export async function rejectsWith(promise: Promise<unknown>, code: status, options: { field?: string; message?: RegExp } = {}): Promise<ServiceError> {
  const error = await settle(promise);
  assertRefusal(error, code, options);
  return error;
}

/** Everything a gRPC error carries to the caller: details, message and every metadata value. */
export function errorText(error: ServiceError): string {
  return [error.details, error.message, JSON.stringify(error.metadata?.toJSON() ?? {})].join('\n');
}

/** A request's metadata. */
export const meta = (metaId: string, owner = 'mallory') => ({ owner, meta_id: metaId });

/**
 * A fresh path in the OS temp folder (/tmp) that nothing should ever create: what a command injected by a request
 * would `touch`, or the outside folder a symlink leads to. Removed by {@link removeMarkers} and at exit.
 */
const markers = new Set<string>();
export function markerPath(label: string): string {
  const file = path.join(os.tmpdir(), `wsd-sec-${label}-${randomBytes(6).toString('hex')}`);
  markers.add(file);
  return file;
}
export function removeMarkers(): void {
  for (const file of markers) rmSync(file, { recursive: true, force: true });
  markers.clear();
}
process.once('exit', removeMarkers);

/** Asserts that a marker was not created (and removes it if it was, so nothing is left behind). */
export function assertNotCreated(file: string, what: string): void {
  const created = existsSync(file);
  if (created) rmSync(file, { recursive: true, force: true });
  assert.equal(created, false, `HOLE OPEN: ${what} — ${file} was created by the daemon`);
}

/** An entry of a planted repository: file content, or a symlink to `symlink`. */
export type PlantedEntry = string | { symlink: string };

/**
 * A bare repository `<root>/<name>.git` with one commit holding `entries` (paths may have folders; symlinks are
 * committed as symlinks). Returns its file:// URL.
 */
export function plantRepo(root: string, name: string, entries: Record<string, PlantedEntry>): string {
  const work = path.join(root, 'work', name);
  mkdirSync(work, { recursive: true });
  sh(work, 'init', '-q', '-b', 'main');
  for (const [rel, entry] of Object.entries(entries)) {
    const file = path.join(work, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    if (typeof entry === 'string') writeFileSync(file, entry);
    else symlinkSync(entry.symlink, file);
  }
  sh(work, 'add', '-A');
  sh(work, 'commit', '-q', '-m', `planted ${name}`);
  const bare = path.join(root, `${name}.git`);
  sh(root, 'clone', '--bare', '-q', work, bare);
  return `file://${bare}`;
}

export interface CountingServer {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  port: number;
  /** Requests received so far (method and URL as sent). */
  requests: string[];
  close(): Promise<void>;
}

/**
 * An HTTP server on `host` (127.0.0.1 unless told) that records every request and answers with `handler`
 * (default: 200 with `body`).
 */
export async function startCountingServer(
  options: { body?: Buffer | string; host?: string; handler?: (req: IncomingMessage, res: ServerResponse) => void } = {},
): Promise<CountingServer> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (options.handler) return options.handler(req, res);
    const body = options.body ?? 'hello\n';
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': Buffer.byteLength(body) }).end(body);
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    origin: `http://${host}:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A random secret-looking token. */
export const token = (label: string): string => `${label}${randomBytes(12).toString('hex')}`;
