import os from 'node:os';
import type { GitRemotePolicy } from '../../plugins/initializer/git/git-policy.js';
import { execFileSync, spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const gitEnv = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };

/** Runs git in `cwd` for test setup; returns trimmed stdout. */
export function sh(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'protocol.file.allow=always', ...args], { cwd, env: gitEnv, encoding: 'utf8' }).trim();
}

export interface TestRepos {
  root: string;
  /** Bare repositories, by name, under `root`. */
  url(name: string): string;
  main: { firstCommit: string; tip: string };
  dev: { tip: string };
}

/**
 * Builds bare repositories in `root`: `project` (branches main and dev, three commits on main, a submodule `lib`),
 * `lib` (the submodule), `upstream` (a fork parent with its own commit).
 */
export function makeRepos(root: string): TestRepos {
  const work = path.join(root, 'work');
  mkdirSync(work, { recursive: true });
  const bare = (name: string, from: string) => sh(root, 'clone', '--bare', '-q', from, path.join(root, `${name}.git`));

  const lib = path.join(work, 'lib');
  mkdirSync(lib);
  sh(lib, 'init', '-q', '-b', 'main');
  writeFileSync(path.join(lib, 'lib.txt'), 'library\n');
  sh(lib, 'add', '.');
  sh(lib, 'commit', '-q', '-m', 'lib');
  bare('lib', lib);

  const project = path.join(work, 'project');
  mkdirSync(project);
  sh(project, 'init', '-q', '-b', 'main');
  writeFileSync(path.join(project, 'README.md'), 'one\n');
  sh(project, 'add', '.');
  sh(project, 'commit', '-q', '-m', 'first');
  const firstCommit = sh(project, 'rev-parse', 'HEAD');
  sh(project, 'submodule', 'add', '-q', path.join(root, 'lib.git'), 'lib');
  sh(project, 'commit', '-q', '-m', 'add submodule');
  writeFileSync(path.join(project, 'README.md'), 'three\n');
  sh(project, 'commit', '-q', '-am', 'third');
  const tip = sh(project, 'rev-parse', 'HEAD');
  sh(project, 'checkout', '-q', '-b', 'dev');
  writeFileSync(path.join(project, 'dev.txt'), 'dev\n');
  sh(project, 'add', '.');
  sh(project, 'commit', '-q', '-m', 'dev work');
  const devTip = sh(project, 'rev-parse', 'HEAD');
  sh(project, 'checkout', '-q', 'main');
  bare('project', project);

  const upstream = path.join(work, 'upstream');
  sh(root, 'clone', '-q', path.join(root, 'project.git'), upstream);
  writeFileSync(path.join(upstream, 'upstream.txt'), 'upstream\n');
  sh(upstream, 'add', '.');
  sh(upstream, 'commit', '-q', '-m', 'upstream only');
  bare('upstream', upstream);

  return { root, url: (name) => `file://${path.join(root, `${name}.git`)}`, main: { firstCommit, tip }, dev: { tip: devTip } };
}

export interface GitHttpServer {
  url(name: string, credentials?: string): string;
  /** One-time-secret URL that answers `user:password` once, then 404. */
  oneTimeSecret(value: string): string;
  /** Git requests answered so far (smart HTTP), and failures served. */
  requests: number;
  /** Answer the next `n` git requests with 503 (a flaky server). */
  failNext(n: number): void;
  close(): Promise<void>;
}

/**
 * Serves the bare repositories in `root` over smart HTTP on 127.0.0.1 through `git http-backend`, behind basic auth
 * when `auth` is given.
 */
export async function startGitHttpServer(root: string, auth?: { user: string; password: string }): Promise<GitHttpServer> {
  const secrets = new Map<string, string>();
  let failures = 0;
  const state = { requests: 0 };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname.startsWith('/ots/')) {
      const value = secrets.get(url.pathname);
      secrets.delete(url.pathname);
      res.writeHead(value ? 200 : 404).end(value ?? 'gone');
      return;
    }
    state.requests++;
    if (failures > 0) {
      failures--;
      res.writeHead(503).end('try later');
      return;
    }
    if (auth) {
      const expected = `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`;
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="git"' }).end('denied');
        return;
      }
    }
    const cgi = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
        PATH_INFO: url.pathname.replace(/^\/git/, ''),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        HTTP_CONTENT_ENCODING: String(req.headers['content-encoding'] ?? ''),
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        REMOTE_USER: auth?.user ?? '',
        REMOTE_ADDR: '127.0.0.1',
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      headersDone = true;
      let status = 200;
      for (const line of head.subarray(0, end).toString().split('\r\n')) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
        else res.setHeader(name, value);
      }
      res.writeHead(status);
      res.write(head.subarray(end + 4));
    });
    cgi.stdout.on('end', () => res.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  let counter = 0;
  return {
    url: (name, credentials) => `http://${credentials ? `${credentials}@` : ''}127.0.0.1:${port}/git/${name}.git`,
    oneTimeSecret(value) {
      const key = `/ots/${++counter}`;
      secrets.set(key, value);
      return `http://127.0.0.1:${port}${key}`;
    },
    get requests() {
      return state.requests;
    },
    failNext(n) {
      failures = n;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  } as GitHttpServer;
}

/**
 * The git policy of tests: the secure default (https, ssh, nothing local) plus what the fixtures need — plain http
 * on 127.0.0.1 (a denied network by default) and file:// repositories under the OS temp folder.
 */
export const gitTestPolicy: GitRemotePolicy = { protocols: ['https', 'ssh', 'http', 'file'], localRoots: [os.tmpdir()], extraConfigKeys: [], allowedNetworks: ['127.0.0.1/32'] };
