/**
 * Regression tests for the red-team review (fixed in 569b8c6), one block per finding, through the real daemon's gRPC
 * API where the finding was (F4's 20 s timeout is tested on readGitStatus itself, with a 1 s timeout):
 * - F1 (critical) a restored prebuild whose `.git/logs/refs/heads`, `.git/refs/heads` or `.git/logs` is a symlink to
 *   a folder outside: git (root) wrote a reflog (with the prebuild's `user.name`, `$(touch …)`) or a ref there;
 * - F2 (high) `http://<allowed>\@127.0.0.1:<port>/` — the WHATWG parser checked host `<allowed>`, git and curl
 *   connected to 127.0.0.1 (a denied network); also as a submodule URL in `.gitmodules`;
 * - F3 (high) git status of a workspace reporting another workspace's commits through a symlinked ref and alternates;
 * - F4 (medium) a fifo in the checkout hung DescribeWorkspace and DisposeWorkspace forever;
 * - F5 (medium) secrets after a quote in a URL (`gh'TOKEN`, `o'brien.tgz?X-Amz-Signature=…`) escaped the scrubbing.
 *
 * Two F5 tests marked "still open" go beyond the finding and fail on 569b8c6: URLs the WHATWG parser accepts but the
 * regex scrubbing (core/observability/redact.ts) does not see whole — a password with an `@`, a query with a space,
 * tab, newline or `<`, `http:host` without `//` — keep their secret in the state file.
 *
 * Network: every server listens on 127.0.0.1 or 127.0.0.2 (both on lo). The "allowed" host of F2 is 127.0.0.2
 * (`allowedNetworks: ['127.0.0.2/32']`, the default deniedNetworks otherwise): a regression sends git to 127.0.0.1
 * (counted) or 127.0.0.2 — never off the node.
 */
import assert from 'node:assert/strict';
import { constants, cpSync, existsSync, mkdirSync, lstatSync, openSync, closeSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import { readGitStatus } from '../../core/content/git-status.js';
import { makeRepos, sh, type TestRepos } from '../kit/git-fixtures.js';
import {
  assertNotCreated,
  assertRefusal,
  errorText,
  markerPath,
  meta,
  outcomeText,
  plantRepo,
  removeMarkers,
  settle,
  startCountingServer,
  startTestDaemon,
  stateFile,
  type CountingServer,
  type TestDaemon,
} from '../kit/security-fixtures.js';
import { until } from '../kit/polling.js';
import { tempDir } from '../kit/temp-dir.js';

const anyDigest = `sha256:${'0'.repeat(64)}`;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `promise`'s value, or `timedOut` once `ms` have passed (the promise is left running). */
function within<T, U>(promise: Promise<T>, ms: number, timedOut: U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<U>((resolve) => (timer = setTimeout(() => resolve(timedOut), ms)));
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Every entry under `dir` with its content (symlinks not followed): what a write through a symlink would change. */
function listing(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  for (const rel of readdirSync(dir, { recursive: true }) as string[]) {
    const full = path.join(dir, rel);
    const info = lstatSync(full);
    out[rel] = info.isFile() ? readFileSync(full, 'utf8') : info.isSymbolicLink() ? `<symlink to ${readlinkSync(full)}>` : '<folder>';
  }
  return out;
}

/** Processes (not this one) whose cwd, command line or environment mentions `needle`: pid and command line. */
function processesMentioning(needle: string): Array<{ pid: number; cmdline: string }> {
  const found: Array<{ pid: number; cmdline: string }> = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const read = (what: string) => {
      try {
        return what === 'cwd' ? readlinkSync(`/proc/${pid}/cwd`) : readFileSync(`/proc/${pid}/${what}`, 'utf8').replace(/\0/g, ' ');
      } catch {
        return '';
      }
    };
    const cmdline = read('cmdline');
    if (read('cwd').startsWith(needle) || cmdline.includes(needle) || read('environ').includes(needle)) found.push({ pid, cmdline });
  }
  return found;
}

/**
 * Lets whatever waits on the fifo `fifo` go on, for good: opened read-write (which wakes readers blocked in open),
 * unlinked (nothing opens it again), closed (no writer left: readers see end of file).
 */
function releaseFifo(fifo: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
  } catch {
    // gone already
  }
  rmSync(fifo, { force: true });
  if (fd !== undefined) closeSync(fd);
}

/** Stops a test daemon (SIGKILL if SIGTERM takes more than 15 s), then ends any process it left running in `dir`. */
async function stopDaemon(daemon: TestDaemon | undefined): Promise<void> {
  if (!daemon) return;
  if ((await within(daemon.stop(), 15_000, 'hung' as const)) === 'hung') await daemon.stop('SIGKILL');
  for (const { pid } of processesMentioning(daemon.dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

describe('security: red-team findings (F1–F5)', () => {
  let repos: TestRepos;
  let wsd: TestDaemon; // file:// under repos.root, http(s) to 127.0.0.1 (F1, F3, F4, F5)
  let n = 0;
  const id = (label: string) => `${label}-${++n}`;

  before(async () => {
    repos = makeRepos(tempDir('wsd-redteam-repos-'));
    wsd = await startTestDaemon(tempDir('wsd-redteam-'), {
      git: { protocols: ['https', 'http', 'file'], localRoots: [repos.root], allowedNetworks: ['127.0.0.1/32'] },
      download: { allowedNetworks: ['127.0.0.1/32'] },
    });
  });
  after(async () => {
    await stopDaemon(wsd);
    removeMarkers();
  });

  describe('F1 (critical): a restored prebuild with a symlink in .git', () => {
    for (const linked of ['logs/refs/heads', 'refs/heads', 'logs']) {
      it(`F1: .git/${linked} → a folder outside, user.name "$(touch …)": a LOCAL_BRANCH "evil.sh" prebuild is refused (FAILED_PRECONDITION, initializer.prebuild.git[0].checkout_location) and nothing is written outside`, async () => {
        const outside = markerPath('redteam-outside');
        const marker = markerPath('redteam-username');
        mkdirSync(outside);
        try {
          // The prebuild's source: a workspace user's clone whose .git entry leads outside (its content moved there, so
          // the repository still works — the way git would keep writing into it).
          const src = id('pb-src');
          await wsd.client.initWorkspace({ id: src, metadata: meta(src), initializer: { empty: {} } });
          const checkout = path.join(wsd.folder(src), 'repo');
          sh(wsd.folder(src), 'clone', '-q', repos.url('project'), checkout);
          sh(checkout, 'config', 'user.name', `x $(touch ${marker}) x`);
          sh(checkout, 'config', 'user.email', 'a@b');
          const entry = path.join(checkout, '.git', linked);
          if (existsSync(entry)) cpSync(entry, outside, { recursive: true });
          rmSync(entry, { recursive: true, force: true });
          mkdirSync(path.dirname(entry), { recursive: true });
          symlinkSync(outside, entry);
          const snapshot = await wsd.client.takeSnapshot(src);
          await wsd.client.disposeWorkspace(src);
          const before = listing(outside);

          const ws = id('pb-victim');
          const error = await settle(
            wsd.client.initWorkspace({
              id: ws,
              metadata: meta(ws),
              initializer: { prebuild: { prebuild: { snapshot }, git: [{ remote_uri: repos.url('project'), checkout_location: 'repo', target_mode: 'LOCAL_BRANCH', clone_taget: 'evil.sh' }] } },
            }),
          );
          const afterInit = listing(outside);
          assert.deepEqual(
            afterInit,
            before,
            `HOLE OPEN: the prebuild (init ${outcomeText(error)}) wrote through the restored .git/${linked} symlink into ${outside}: ${JSON.stringify(afterInit).slice(0, 600)}`,
          );
          assertNotCreated(marker, `the user.name of the restored prebuild ran (init ${outcomeText(error)})`);
          assertRefusal(error, status.FAILED_PRECONDITION, { field: 'initializer.prebuild.git[0].checkout_location', message: /neither a folder nor a regular file/ }, `prebuild with .git/${linked} → outside`);
          await wsd.client.disposeWorkspace(ws).catch(() => undefined);
        } finally {
          rmSync(outside, { recursive: true, force: true });
          rmSync(marker, { force: true });
        }
      });
    }
  });

  describe('F2 (high): a backslash in a remote URL (checked host ≠ the host git connects to)', () => {
    let local: TestDaemon; // default deniedNetworks (127.0.0.1 denied), 127.0.0.2 allowed: the "public" host of the finding
    let target: CountingServer; // 127.0.0.1: the internal service git must not reach
    let fake: CountingServer; // 127.0.0.2: the host the URL parser sees
    let root: string;

    before(async () => {
      root = tempDir('wsd-redteam-f2-');
      const notFound = (_req: unknown, res: { writeHead(code: number): { end(): void } }) => res.writeHead(404).end();
      target = await startCountingServer({ handler: notFound });
      fake = await startCountingServer({ host: '127.0.0.2', handler: notFound });
      local = await startTestDaemon(tempDir('wsd-redteam-f2-daemon-'), { git: { protocols: ['https', 'http', 'file'], localRoots: [root], allowedNetworks: ['127.0.0.2/32'] } });
    });
    after(async () => {
      await stopDaemon(local);
      await target?.close();
      await fake?.close();
    });

    it('F2 controls: 127.0.0.1 is denied (no request), 127.0.0.2 is allowed (reached)', async () => {
      const denied = id('f2-denied');
      const deniedError = await settle(local.client.initWorkspace({ id: denied, metadata: meta(denied), initializer: { git: { remote_uri: `${target.origin}/repo` } } }));
      assert.deepEqual(target.requests, [], `a plain 127.0.0.1 remote reached the server (${outcomeText(deniedError)})`);
      // (the daemon reports the network refusal as FAILED_PRECONDITION: initializer failures keep only a few codes)
      assertRefusal(deniedError, status.FAILED_PRECONDITION, { field: 'initializer.git.remote_uri', message: /deniedNetworks/ }, 'plain 127.0.0.1 remote');
      const allowed = id('f2-allowed');
      const allowedError = await settle(local.client.initWorkspace({ id: allowed, metadata: meta(allowed), initializer: { git: { remote_uri: `${fake.origin}/repo` } } }));
      assert.ok(fake.requests.length > 0, `the allowed 127.0.0.2 remote was not fetched (${outcomeText(allowedError)})`);
      assert.deepEqual(target.requests, []);
    });

    it('F2: remote_uri "http://127.0.0.2\\@127.0.0.1:<port>/repo" is INVALID_ARGUMENT (initializer.git.remote_uri) and 127.0.0.1 gets no request', async () => {
      const evil = `http://127.0.0.2\\@127.0.0.1:${target.port}/repo`;
      for (const full_clone of [true, false]) {
        const ws = id('f2-backslash');
        const error = await settle(local.client.initWorkspace({ id: ws, metadata: meta(ws), initializer: { git: { remote_uri: evil, target_mode: 'REMOTE_HEAD', full_clone } } }));
        assert.deepEqual(target.requests, [], `HOLE OPEN: ${JSON.stringify(evil)} was checked as host 127.0.0.2 but git fetched from 127.0.0.1 (init ${outcomeText(error)})`);
        assertRefusal(error, status.INVALID_ARGUMENT, { field: 'initializer.git.remote_uri' }, JSON.stringify(evil));
      }
    });

    it('F2: the same URL as a submodule in .gitmodules is not fetched (the superproject may initialize without it)', async () => {
      const commit = sh(plantRepo(root, 'internal', { 'SECRET.txt': 'internal\n' }).replace('file://', ''), 'rev-parse', 'HEAD');
      const work = path.join(root, 'superwork');
      mkdirSync(work, { recursive: true });
      sh(work, 'init', '-q', '-b', 'main');
      writeFileSync(path.join(work, 'README'), 'super\n');
      const subUrl = `http://127.0.0.2\\@127.0.0.1:${target.port}/repo`;
      writeFileSync(path.join(work, '.gitmodules'), `[submodule "s"]\n\tpath = s\n\turl = ${subUrl.replace(/\\/g, '\\\\')}\n`);
      assert.equal(sh(work, 'config', '--file', '.gitmodules', 'submodule.s.url'), subUrl, 'test setup: git reads the backslash URL');
      sh(work, 'update-index', '--add', '--cacheinfo', `160000,${commit},s`);
      sh(work, 'add', 'README', '.gitmodules');
      sh(work, 'commit', '-q', '-m', 'super');
      const bare = path.join(root, 'super.git');
      sh(root, 'clone', '--bare', '-q', work, bare);
      const before = target.requests.length;
      for (const full_clone of [true, false]) {
        const ws = id('f2-submodule');
        const error = await settle(local.client.initWorkspace({ id: ws, metadata: meta(ws), initializer: { git: { remote_uri: `file://${bare}`, full_clone } } }));
        assert.deepEqual(target.requests.slice(before), [], `HOLE OPEN: the submodule URL ${JSON.stringify(subUrl)} was fetched from 127.0.0.1 (init ${outcomeText(error)})`);
        assert.ok(!existsSync(path.join(local.folder(ws), 's', 'SECRET.txt')), 'the submodule was checked out');
        if (!error) assert.ok(existsSync(path.join(local.folder(ws), 'README')), 'the superproject is checked out');
        await local.client.disposeWorkspace(ws).catch(() => undefined);
      }
    });
  });

  describe('F3 (high): git status of a workspace reading another workspace through symlinked refs and alternates', () => {
    for (const plant of ['ref file symlink', 'ref folder symlink'] as const) {
      it(`F3 (${plant}): DescribeWorkspace and DisposeWorkspace of the attacker's workspace do not show the victim's commit`, async () => {
        const subject = `ALICE PRIVATE ${n}: acquisition of ACME closes friday`;
        const victim = id('f3-victim');
        await wsd.client.initWorkspace({ id: victim, metadata: meta(victim, 'alice'), initializer: { empty: {} } });
        const v = wsd.folder(victim);
        sh(v, 'init', '-q', '-b', 'main');
        writeFileSync(path.join(v, 'a'), 'a\n');
        sh(v, 'add', 'a');
        sh(v, 'commit', '-q', '-m', subject);
        const victimCommit = sh(v, 'rev-parse', 'HEAD');

        const attacker = id('f3-mallory');
        await wsd.client.initWorkspace({ id: attacker, metadata: meta(attacker), initializer: { empty: {} } });
        const m = wsd.folder(attacker);
        sh(m, 'init', '-q', '-b', 'main');
        writeFileSync(path.join(m, 'b'), 'b\n');
        sh(m, 'add', 'b');
        sh(m, 'commit', '-q', '-m', 'mine');
        try {
          // Control: the attacker's own status is reported (so an empty answer below is not for lack of a status).
          const own = await wsd.client.describeWorkspace(attacker);
          assert.ok(own.git_status?.unpushed_commits.some((c) => c.endsWith(': mine')), `no git status reported for a plain repository: ${JSON.stringify(own.git_status)}`);

          if (plant === 'ref file symlink') symlinkSync(path.join(v, '.git/refs/heads/main'), path.join(m, '.git/refs/heads/stolen'));
          else symlinkSync(path.join(v, '.git/refs/heads'), path.join(m, '.git/refs/heads/stolen'));
          writeFileSync(path.join(m, '.git/objects/info/alternates'), `${path.join(v, '.git/objects')}\n`);
          // Test setup: git itself (as the daemon would run it) now lists the victim's commit from the attacker's repository.
          assert.match(sh(m, 'log', '--pretty=%s', '--branches'), new RegExp(subject), 'test setup: the plant does not reach the victim');

          const secrets = [subject, 'ALICE PRIVATE', victimCommit];
          const detail = await wsd.client.describeWorkspace(attacker);
          // The status describe read may be kept in the workspace's record (read before the dispose removes it).
          const state = existsSync(stateFile(wsd.dataDir, attacker)) ? readFileSync(stateFile(wsd.dataDir, attacker), 'utf8') : '';
          const disposed = await wsd.client.disposeWorkspace(attacker);
          for (const [place, text] of Object.entries({ DescribeWorkspace: JSON.stringify(detail), DisposeWorkspace: JSON.stringify(disposed), 'state file': state })) {
            for (const secret of secrets) {
              assert.ok(!text.includes(secret), `HOLE OPEN: the attacker's ${place} shows the victim's commit (${JSON.stringify(secret)}): ${text.slice(0, 600)}`);
            }
          }
        } finally {
          await wsd.client.disposeWorkspace(attacker).catch(() => undefined);
          await wsd.client.disposeWorkspace(victim).catch(() => undefined);
        }
      });
    }
  });

  describe('F4 (medium): a fifo in the checkout', () => {
    it('F4 (unit): readGitStatus with a fifo .gitignore resolves (undefined) after its timeout, twice concurrently (one shared read), leaving no git process and no shadow folder', { timeout: 30_000 }, async () => {
      const checkout = tempDir('wsd-redteam-fifo-');
      sh(checkout, 'init', '-q', '-b', 'main');
      writeFileSync(path.join(checkout, 'b'), 'b\n');
      sh(checkout, 'add', 'b');
      sh(checkout, 'commit', '-q', '-m', 'mine');
      const fifo = path.join(checkout, '.gitignore');
      execFileSync('mkfifo', [fifo]);
      // A private temp folder: the shadow git folders of this call, and only those, land in it.
      const tmp = tempDir('wsd-redteam-tmpdir-');
      const savedTmpdir = process.env.TMPDIR;
      process.env.TMPDIR = tmp;
      const shadows = new Set<string>();
      let polling = true;
      const poll = (async () => {
        while (polling) {
          for (const name of readdirSync(tmp)) if (name.startsWith('wsd-git-status-')) shadows.add(name);
          await sleep(10);
        }
      })();
      try {
        const started = Date.now();
        const first = readGitStatus(checkout, { timeoutMs: 1000 });
        // The second call comes while the first one (1 s deadline) is surely still waiting: 800 ms of margin.
        await sleep(200);
        const second = readGitStatus(checkout, { timeoutMs: 1000 });
        const results = await within(Promise.all([first, second]), 8000, 'hung' as const);
        const elapsed = Date.now() - started;
        assert.notEqual(results, 'hung', 'HOLE OPEN: readGitStatus on a checkout with a fifo .gitignore has not answered after 8 s (its 1 s timeout is not applied)');
        assert.deepEqual(results, [undefined, undefined]);
        assert.ok(elapsed < 5000, `took ${elapsed} ms with a 1 s timeout`);
        await until(() => processesMentioning(checkout).length === 0, 'the git processes of the timed-out status read to end', 5000);
        polling = false;
        await poll;
        assert.ok(shadows.size >= 1, 'test setup: no shadow git folder was seen in os.tmpdir() during the call');
        assert.equal(shadows.size, 1, `the second call did not share the first: shadow folders ${[...shadows].join(', ')}`);
        assert.deepEqual(readdirSync(tmp).filter((name) => name.startsWith('wsd-git-status-')), [], 'the shadow git folder was not removed');
      } finally {
        polling = false;
        await poll;
        if (savedTmpdir === undefined) delete process.env.TMPDIR;
        else process.env.TMPDIR = savedTmpdir;
        // Whatever still waits on the fifo (a regression): let it go, then end what is left (this process started it).
        releaseFifo(fifo);
        await until(() => processesMentioning(checkout).length === 0, 'released readers to exit', 2000).catch(() => undefined);
        for (const { pid } of processesMentioning(checkout)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone
          }
        }
      }
    });

    it('F4 (API): a fifo among .git/refs/heads does not hang DescribeWorkspace or DisposeWorkspace', { timeout: 30_000 }, async () => {
      const ws = id('f4-ref-fifo');
      await wsd.client.initWorkspace({ id: ws, metadata: meta(ws), initializer: { empty: {} } });
      const m = wsd.folder(ws);
      sh(m, 'init', '-q', '-b', 'main');
      writeFileSync(path.join(m, 'b'), 'b\n');
      sh(m, 'add', 'b');
      sh(m, 'commit', '-q', '-m', 'mine');
      const fifo = path.join(m, '.git/refs/heads/zz');
      execFileSync('mkfifo', [fifo]);
      try {
        const described = await within(settle(wsd.client.describeWorkspace(ws)), 5000, 'hung' as const);
        assert.notEqual(described, 'hung', 'HOLE OPEN: DescribeWorkspace of a checkout with a fifo in .git/refs/heads has not answered after 5 s');
        assert.equal(described, undefined, `DescribeWorkspace failed: ${outcomeText(described as ServiceError)}`);
        const disposed = await within(settle(wsd.client.disposeWorkspace(ws)), 5000, 'hung' as const);
        assert.notEqual(disposed, 'hung', 'HOLE OPEN: DisposeWorkspace of a checkout with a fifo in .git/refs/heads has not answered after 5 s');
        assert.equal(disposed, undefined, `DisposeWorkspace failed: ${outcomeText(disposed as ServiceError)}`);
      } finally {
        releaseFifo(fifo); // a hung read (a regression) goes on; the dispose below does not hang
        await within(wsd.client.disposeWorkspace(ws).catch(() => undefined), 5000, undefined);
      }
    });
  });

  describe('F5 (medium): secrets in URLs with a quote (or an @) reach the state file, logs or errors', () => {
    let server: CountingServer;
    before(async () => {
      server = await startCountingServer({ handler: (_req, res) => void res.writeHead(500).end() });
    });
    after(async () => {
      await server?.close();
    });

    /** Every place a secret could end up, as text, for workspace `ws` and the error its init gave. */
    async function everywhere(ws: string, error: ServiceError | undefined): Promise<Record<string, string>> {
      const detail = await wsd.client.describeWorkspace(ws).then(
        (d) => d,
        (e: ServiceError) => ({ error: errorText(e) }),
      );
      return {
        'state file': existsSync(stateFile(wsd.dataDir, ws)) ? readFileSync(stateFile(wsd.dataDir, ws), 'utf8') : '',
        'daemon logs and stderr': wsd.output(),
        'DescribeWorkspace.last_error': 'last_error' in detail ? detail.last_error : '',
        DescribeWorkspace: JSON.stringify(detail),
        'gRPC error': error ? errorText(error) : '',
      };
    }
    function leaks(places: Record<string, string>, secret: string): string[] {
      return Object.entries(places)
        .filter(([, text]) => text.includes(secret))
        .map(([place, text]) => {
          const at = text.indexOf(secret);
          return `${place}: …${text.slice(Math.max(0, at - 60), at + secret.length + 10)}…`;
        });
    }

    async function tryInit(label: string, initializer: object, secret: string): Promise<string[]> {
      const ws = id(label);
      const error = await settle(wsd.client.initWorkspace({ id: ws, metadata: meta(ws), initializer }));
      const found = leaks(await everywhere(ws, error), secret).map((l) => `${label} (init ${outcomeText(error).replace(secret, '<SECRET>').slice(0, 160)}) → ${l}`);
      await wsd.client.disposeWorkspace(ws).catch(() => undefined);
      return found;
    }

    it("F5: a git token after a quote (http://oauth2:gh'TOKEN@…) and a presigned download URL with a quote in its path (o'brien.tgz?X-Amz-Signature=…) are in neither the state file, the logs, last_error nor the gRPC error", async () => {
      const p = server.port;
      const found = [
        ...(await tryInit('f5-git-quote', { git: { remote_uri: `http://oauth2:gh'TOKENAAA1@127.0.0.1:${p}/x` } }, 'TOKENAAA1')),
        ...(await tryInit(
          'f5-dl-quote',
          { download: { files: [{ url: `http://127.0.0.1:${p}/bucket/o'brien.tgz?X-Amz-Signature=SIGSECRETBBB2`, file_path: 'f', digest: anyDigest }] } },
          'SIGSECRETBBB2',
        )),
      ];
      assert.deepEqual(found, [], `HOLE OPEN: secrets leaked:\n${found.join('\n')}`);
    });

    it("F5 (beyond the finding, still open): a password with an '@' (http://oauth2:gh@TOKEN@127.0.0.1/…, which the URL parser reads as password \"gh@TOKEN\") keeps TOKEN in the state file", async () => {
      const p = server.port;
      const found = [
        ...(await tryInit('f5-git-at', { git: { remote_uri: `http://oauth2:gh@TOKENCCC3@127.0.0.1:${p}/x` } }, 'TOKENCCC3')),
        ...(await tryInit(
          'f5-dl-at',
          { download: { files: [{ url: `http://user:pw@SECRETDDD4@127.0.0.1:${p}/bucket/f.tgz`, file_path: 'f', digest: anyDigest }] } },
          'SECRETDDD4',
        )),
      ];
      assert.deepEqual(found, [], `HOLE OPEN: secrets leaked:\n${found.join('\n')}`);
    });

    it('F5 (beyond the finding, still open): a presigned download URL the URL parser accepts but the scrubbing does not see whole (a space, tab, newline, < or > in the query or password; "http:/host" or "http:host" without "//") keeps its secret in the state file', async () => {
      const p = server.port;
      const cases: Array<[string, string]> = [
        [`http://127.0.0.1:${p}/f?X-Amz-Signature=AAA BBBSECRET1`, 'BBBSECRET1'],
        [`http://127.0.0.1:${p}/f?X-Amz-Signature=AAA\tBBBSECRET2`, 'BBBSECRET2'],
        [`http://127.0.0.1:${p}/f?X-Amz-Signature=AAA\nBBBSECRET3`, 'BBBSECRET3'],
        [`http://127.0.0.1:${p}/f?X-Amz-Signature=AAA<BBBSECRET4`, 'BBBSECRET4'],
        [`http://u:AAA>BBBSECRET5@127.0.0.1:${p}/f`, 'BBBSECRET5'],
        [`http:/127.0.0.1:${p}/f?X-Amz-Signature=BBBSECRET6`, 'BBBSECRET6'],
        [`http:127.0.0.1:${p}/f?X-Amz-Signature=BBBSECRET7`, 'BBBSECRET7'],
      ];
      const found: string[] = [];
      for (const [url, secret] of cases) {
        found.push(...(await tryInit('f5-dl-form', { download: { files: [{ url, file_path: 'f', digest: anyDigest }] } }, secret)).map((l) => `${JSON.stringify(url.replace(secret, '<SECRET>'))}: ${l}`));
      }
      assert.deepEqual(found, [], `HOLE OPEN: secrets leaked:\n${found.join('\n')}`);
    });
  });
});
