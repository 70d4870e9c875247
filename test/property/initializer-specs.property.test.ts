// Property tests: random and hostile initializer specs, fed straight to the built-in initializers.
//
// Every field of a spec comes from a request, and wsd runs as root. Whatever the spec:
// - the initializer fails with a WsdError or succeeds (never a TypeError, an fs error, ...);
// - nothing appears next to the workspace folder (not even for a moment, where watched), in a folder a planted
//   symlink points to, or in `/`;
// - no command named by the spec runs: hostile values would `touch` a canary file (through `ext::`, `--upload-pack`,
//   `-oProxyCommand`, `core.sshCommand`, `include.path`, a credential value...), which must never exist;
// - a spec refused with INVALID_ARGUMENT names the field and ran no git at all (a logging `git` shim first in PATH
//   records every invocation);
// - no process started for the run is left (descendants of this process, or anything carrying the canary folder or
//   this run's child-process marker in its command line or environment);
// - downloads never connect to a denied address (a trap server records every connection), and neither does the
//   one-time-secret fetch of git's BASIC_AUTH_OTS.
// Crashes (non-WsdErrors) are asserted by properties of their own, so that one found first cannot hide an escape,
// a command run or a process left behind. Every property has a fixed seed: `WSD_PROPERTY_SEED` and
// `WSD_PROPERTY_RUNS` (a factor) replay or extend them (see ./support.ts).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, watch, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { BackupStore } from '../../core/content/backup-store.js';
import { isWsdError } from '../../core/errors.js';
import type { ContentInitializer } from '../../core/initializer/content-initializer.js';
import { silentLogger } from '../../core/observability/logger.js';
import { configureChildProcesses, markerVariable } from '../../core/process/child-processes.js';
import { BackupContentInitializer } from '../../plugins/initializer/backup/backup-content-initializer.js';
import { CompositeContentInitializer } from '../../plugins/initializer/composite/composite-content-initializer.js';
import { DownloadContentInitializer } from '../../plugins/initializer/download/download-content-initializer.js';
import { EmptyContentInitializer } from '../../plugins/initializer/empty/empty-content-initializer.js';
import { GitContentInitializer } from '../../plugins/initializer/git/git-content-initializer.js';
import { defaultGitRemotePolicy, type GitRemotePolicy } from '../../plugins/initializer/git/git-policy.js';
import { OneTimeSecrets } from '../../plugins/initializer/git/one-time-secret.js';
import { SnapshotContentInitializer } from '../../plugins/initializer/snapshot/snapshot-content-initializer.js';
import { memoryStorage } from '../kit/fakes.js';
import { initializerRun } from '../kit/initializer-options.js';
import { tempDir } from '../kit/temp-dir.js';
import { assertOnlyWsdError, assertOptions, caught, escapedInto, killAll, leftoverProcesses, newRootEntries, rootEntries, walk } from './support.js';

// ---------------------------------------------------------------------------------------------------------------
// The world the runs share: canary, symlink targets, git shim, servers, stored snapshots.

const marker = `wsd-prop-${randomBytes(6).toString('hex')}`;
const canaryDir = tempDir('wsd-prop-canary-');
/** Exists only if a command from a spec ran. */
const canary = path.join(canaryDir, 'pwned');
/** A one-word command (no spaces to refuse) that creates the canary. */
const mark = path.join(canaryDir, 'mark');
/** A git config file that would run `mark` as ssh, for `include.path`. */
const evilConfig = path.join(canaryDir, 'evil.gitconfig');
/** Where planted symlinks point: must stay empty. */
const outside = tempDir('wsd-prop-outside-');
const shimDir = tempDir('wsd-prop-shim-');
const gitLog = path.join(shimDir, 'calls.log');
const payload = 'payload\n';
const payloadDigest = createHash('sha256').update(payload).digest('hex');

let good: { server: Server; port: number };
/** Every connection the trap saw: the local address it reached, and the path of its request (if one came). */
let trap: { server: Server; port: number; connections: Array<{ local: string; path?: string }> };
let authServer: { server: Server; port: number };
const storage = memoryStorage();
const snapshots = { plant: '', through: '' };

/** Redirect targets the good server hands out at `/redirect/<i>`. Set once the ports are known. */
let redirectTargets: string[] = [];

function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve) => server.listen(0, host, () => resolve((server.address() as AddressInfo).port)));
}

before(async () => {
  writeFileSync(mark, `#!/bin/sh\ntouch '${canary}'\n`);
  chmodSync(mark, 0o755);
  writeFileSync(evilConfig, `[core]\n\tsshCommand = ${mark}\n\tfsmonitor = ${mark}\n[protocol "ext"]\n\tallow = always\n`);

  // Every git the initializers run goes through this shim (runGit passes PATH on), which records its arguments.
  const realGit = (process.env.PATH ?? '/usr/bin:/bin').split(':').map((d) => path.join(d, 'git')).find((p) => existsSync(p));
  assert.ok(realGit, 'git is installed');
  writeFileSync(path.join(shimDir, 'git'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${gitLog}'\nexec '${realGit}' "$@"\n`);
  chmodSync(path.join(shimDir, 'git'), 0o755);
  process.env.PATH = `${shimDir}:${process.env.PATH ?? '/usr/bin:/bin'}`;
  // Children of this process carry the marker, so one re-parented to init is still found.
  configureChildProcesses({ marker });

  // The trap: every connection to it is recorded (by the local address it reached). Dual-stack, any address.
  const connections: Array<{ local: string; path?: string }> = [];
  const bySocket = new WeakMap<Socket, { local: string; path?: string }>();
  const trapServer = createServer((req, res) => {
    const entry = bySocket.get(req.socket);
    if (entry) entry.path = req.url;
    res.end(req.url === '/ots' ? 'user:password' : payload);
  });
  trapServer.on('connection', (socket: Socket) => {
    const entry = { local: socket.localAddress ?? '?' };
    bySocket.set(socket, entry);
    connections.push(entry);
  });
  trap = { server: trapServer, port: await listen(trapServer, '::'), connections };

  const goodServer = createServer((req, res) => {
    const url = req.url ?? '/';
    const redirect = /^\/redirect\/(\d+)$/.exec(url);
    if (redirect) {
      res.writeHead(302, { location: redirectTargets[Number(redirect[1])] ?? '/payload' });
      res.end();
    } else if (url === '/big') {
      res.writeHead(200, { 'content-length': String(2 * 1024 * 1024) });
      res.end(Buffer.alloc(2 * 1024 * 1024));
    } else if (url === '/404') {
      res.writeHead(404).end();
    } else if (url === '/500') {
      res.writeHead(500).end();
    } else if (url === '/ots') {
      res.end('user:password');
    } else {
      res.end(payload);
    }
  });
  good = { server: goodServer, port: await listen(goodServer, '127.0.0.1') };
  const P = trap.port;
  redirectTargets = [
    'http://169.254.169.254/latest/meta-data/',
    `http://[::1]:${P}/`,
    `http://0.0.0.0:${P}/`,
    `http://[::]:${P}/`,
    `http://127.0.0.2:${P}/`,
    `http://[::ffff:127.0.0.2]:${P}/`,
    `http://2130706434:${P}/`,
    `http://0x7f.0.0.2:${P}/`,
    `http://127.2:${P}/`,
    `//[::1]:${P}/x`,
    `http://localhost:${P}/`,
    `http://[fe80::1]:${P}/`,
    'http://100.100.100.200/',
    'http://[fd00:ec2::254]/',
    'file:///etc/passwd',
    'data:,payload',
    `ftp://127.0.0.2:${P}/`,
    '/payload',
    '/redirect/0',
    '/redirect/18',
  ];

  // Answers every request with 401, so git asks the credential helper (hostile user names and passwords included).
  const auth = createServer((_req, res) => res.writeHead(401, { 'www-authenticate': 'Basic realm="wsd"' }).end());
  authServer = { server: auth, port: await listen(auth, '127.0.0.1') };

  // Two stored snapshots: one plants symlinks out of the folder, the other has folders of the same names.
  const plantSource = tempDir('wsd-prop-snap-');
  symlinkSync(outside, path.join(plantSource, 'evil'));
  symlinkSync('/', path.join(plantSource, 'root'));
  symlinkSync(path.join(outside, 'missing'), path.join(plantSource, 'dangling'));
  const throughSource = tempDir('wsd-prop-snap-');
  for (const name of ['evil', 'root', 'dangling']) {
    mkdirSync(path.join(throughSource, name));
    writeFileSync(path.join(throughSource, name, 'wsdprop-through'), 'x');
  }
  const store = new BackupStore(storage, silentLogger);
  snapshots.plant = (await store.write({ owner: 'owner', metaId: 'meta', instanceId: 'src' }, plantSource, 'snapshot')).object;
  snapshots.through = (await store.write({ owner: 'owner', metaId: 'meta', instanceId: 'src' }, throughSource, 'snapshot')).object;
});

after(async () => {
  for (const s of [good?.server, trap?.server, authServer?.server]) s?.closeAllConnections();
  await Promise.all([good?.server, trap?.server, authServer?.server].map((s) => new Promise<void>((resolve) => (s ? s.close(() => resolve()) : resolve()))));
});

/** Content an earlier initializer (or the user) may have left: symlinks out of the folder, a folder, a file. */
function plant(dir: string): void {
  symlinkSync(outside, path.join(dir, 'evil'));
  symlinkSync('/', path.join(dir, 'root'));
  symlinkSync(path.join(outside, 'missing'), path.join(dir, 'dangling'));
  mkdirSync(path.join(dir, 'existing-dir'));
  writeFileSync(path.join(dir, 'existing-dir', 'keep'), 'x');
  writeFileSync(path.join(dir, 'file'), 'x');
}

function gitCalls(): string[] {
  return existsSync(gitLog) ? readFileSync(gitLog, 'utf8').split('\n').filter(Boolean) : [];
}

let stats = { runs: 0, gitRuns: 0, succeeded: 0, aborted: 0, codes: new Map<string, number>() };

/** fc.assert, then (pass or fail) a line of what the runs did: how many reached git, succeeded, failed how. */
async function check(
  t: { diagnostic(message: string): void },
  property: fc.IAsyncProperty<unknown>,
  params: ReturnType<typeof assertOptions>,
  floor: { gitRuns?: number; succeeded?: number } = {},
): Promise<void> {
  stats = { runs: 0, gitRuns: 0, succeeded: 0, aborted: 0, codes: new Map() };
  try {
    await fc.assert(property, params);
  } finally {
    const outcomes = JSON.stringify(Object.fromEntries(stats.codes));
    t.diagnostic(`runs ${stats.runs}, reaching git ${stats.gitRuns}, succeeded ${stats.succeeded}, aborted ${stats.aborted}, outcomes ${outcomes}`);
  }
  // A property that refused everything, or whose runs hung until the safety timer, proves nothing.
  assert.ok(stats.runs > 0, 'the property ran');
  assert.equal(stats.aborted, 0, 'no run hung until the 20 s safety timer');
  assert.ok(stats.gitRuns >= (floor.gitRuns ?? 0), `at least ${floor.gitRuns} runs reached git (${stats.gitRuns})`);
  assert.ok(stats.succeeded >= (floor.succeeded ?? 0), `at least ${floor.succeeded} runs succeeded (${stats.succeeded})`);
}

/**
 * One run of `initializer` on `spec` in a fresh folder, and every check of the file. `refusedRunsNothing`: an
 * INVALID_ARGUMENT must come before any git ran (not for composites, whose earlier children may have run git).
 */
async function checkRun(
  initializer: ContentInitializer,
  spec: unknown,
  options: {
    plant: boolean;
    helpers?: ContentInitializer[];
    refusedRunsNothing?: boolean;
    /** Which connections to the trap are legitimate (default: none). */
    trapAllowed?: (connection: { local: string; path?: string }) => boolean;
    /** Also catch entries that appear next to the workspace folder and are gone again by the end (inotify). */
    watchSandbox?: boolean;
    /**
     * `ignore`: a non-WsdError does not fail this property (a sibling property asserts it), so that a crash found
     * first cannot hide an escape, a command run or a process left behind from this one.
     */
    crashes?: 'fail' | 'ignore';
  },
): Promise<void> {
  rmSync(gitLog, { force: true });
  trap.connections.length = 0;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 20_000);
  const run = initializerRun(spec, { storage, initializers: options.helpers ?? [], signal: controller.signal });
  if (options.plant) plant(run.dir);
  const rootBefore = rootEntries();
  const appeared: string[] = [];
  const watcher = options.watchSandbox ? watch(run.sandbox, (event, name) => name !== 'workspace' && appeared.push(`${event} ${name}`)) : undefined;
  let error: unknown;
  try {
    error = await caught(() => initializer.initialize(run.options));
  } finally {
    clearTimeout(timer);
  }
  if (watcher) {
    await new Promise((resolve) => setTimeout(resolve, 15)); // inotify events of the run's last writes
    watcher.close();
  }
  stats.runs++;
  const calls = gitCalls();
  if (calls.length) stats.gitRuns++;
  if (error === undefined) stats.succeeded++;
  const code = isWsdError(error) ? error.code : error === undefined ? 'ok' : 'non-WsdError';
  stats.codes.set(code, (stats.codes.get(code) ?? 0) + 1);

  // Observe everything, then undo what escaped (so that shrinking sees each candidate afresh), then judge.
  const ranCommand = existsSync(canary);
  const next = escapedInto(run.sandbox, ['workspace']);
  const through = walk(outside);
  const inRoot = newRootEntries(rootBefore);
  const denied = trap.connections.filter((c) => !(options.trapAllowed?.(c) ?? false));
  const left = await leftoverProcesses([canaryDir, `${markerVariable}=${marker}`]);
  rmSync(canary, { force: true });
  for (const name of readdirSync(outside)) rmSync(path.join(outside, name), { recursive: true, force: true });
  for (const name of inRoot) if (name.startsWith('wsdprop')) rmSync(path.join('/', name), { recursive: true, force: true });
  killAll(left);
  rmSync(run.sandbox, { recursive: true, force: true });

  const aborted = controller.signal.aborted && (error as Error | undefined)?.name === 'AbortError';
  if (aborted) stats.aborted++;
  if (!aborted && options.crashes !== 'ignore') assertOnlyWsdError(error, `${initializer.kind} initializer`);
  assert.equal(ranCommand, false, `a command from the spec ran (the canary ${canary} was created); git calls: ${JSON.stringify(calls)}`);
  if (isWsdError(error, 'INVALID_ARGUMENT')) {
    assert.ok(error.field, `INVALID_ARGUMENT without a field: ${error.message}`);
    if (options.refusedRunsNothing) assert.deepEqual(calls, [], `git ran for a spec refused with INVALID_ARGUMENT (${error.message})`);
  }
  assert.deepEqual(next, [], 'written next to the workspace folder');
  assert.deepEqual(appeared, [], 'written next to the workspace folder during the run (and removed since)');
  assert.deepEqual(through, [], 'written through a planted symlink into a folder outside the workspace');
  assert.deepEqual(inRoot, [], 'written into / (through a planted symlink to /)');
  assert.deepEqual(denied, [], 'connected to a denied address (the trap server saw these connections: local address reached, request path)');
  assert.deepEqual(
    left.map((p) => `${p.pid} (ppid ${p.ppid}): ${p.cmdline}`),
    [],
    `${initializer.kind} initializer: processes left behind`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Generators.

const hex = fc.constantFrom(...'0123456789abcdefABCDEF');
/** Any code point (control characters, NUL, astral planes) or printable ASCII, short. */
const anyString = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'binary-ascii', maxLength: 40 }));

/** Remote URIs: hostile ones that would run `mark` if git executed them, odd-but-valid ones, and random text. */
const remoteArb = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      `ext::sh -c touch% ${canary}`,
      `ext::${mark}`,
      `EXT::${mark}`,
      `Ext::sh -c ${mark}`,
      `ext::sh%20-c%20${mark}`,
      'fd::0',
      'fd::3,4/x',
      `-oProxyCommand=${mark}`,
      `-oProxyCommand=${mark}:x`,
      `--upload-pack=${mark}`,
      `--upload-pack=touch ${canary}`,
      `-u${mark}`,
      `ssh://-oProxyCommand=${mark}/x`,
      `ssh://-oProxyCommand=${mark}@127.0.0.1:1/x`,
      `ssh://%2DoProxyCommand=${mark}@127.0.0.1:1/x`,
      `ssh://[-oProxyCommand=${mark}]:1/x`,
      `-oProxyCommand=${mark}@127.0.0.1:x`,
      `a@-oProxyCommand=${mark}:x`,
      `[-oProxyCommand=${mark}]:x`,
      `ssh://127.0.0.1:1/--upload-pack=${mark}`,
      `wsd-prop.invalid:--upload-pack=${mark}`,
      `ssh://127.0.0.1:1/x;${mark}`,
      `ssh://127.0.0.1:1/$(${mark})`,
      `https://127.0.0.1:1/$(${mark})`,
      `file://${canaryDir}`,
      'file:///etc',
      'file:///',
      'file://localhost/etc',
      'file:/etc',
      'FILE:///etc',
      '/',
      '/etc',
      '/proc/self/cwd',
      '.',
      '..',
      './x',
      '~',
      'x',
      '-x:y',
      'x:y',
      'git@wsd-prop.invalid:x',
      'ssh://127.0.0.1:1/x',
      'ssh://git@127.0.0.1:1/~/x',
      'ssh://[::1]:1/x',
      'ssh://[::1%lo]:1/x',
      'https://127.0.0.1:1/x',
      'https://user:pass@127.0.0.1:1/x',
      'https://u:%00@127.0.0.1:1/x',
      'https://%0a:p@127.0.0.1:1/x',
      'https://u:%ZZ@127.0.0.1:1/x',
      'https://%E0%A4%A@wsd-prop.invalid/x',
      'file:///%ZZ',
      'file:///%00',
      'https://[::1]:1/x',
      'https://0.0.0.0:1/x',
      'git://127.0.0.1:1/x',
      'http://127.0.0.1:1/x',
      'https://169.254.169.254/x',
      `https://127.0.0.1:1/${'a'.repeat(5000)}`,
      'a'.repeat(5000),
      'https://127.0.0.1:1/x\n',
      'https://127.0.0.1:1/x\u0000y',
      'https://127.0.0.1:1/x y',
      'https://ex\u0000ample.invalid/x',
      'https://éxample.invalid/x',
      'https://xn--xmple-rqa.invalid/x',
      '\u202eftp://x',
      '',
    ),
  },
  { weight: 2, arbitrary: fc.constantFrom('ssh://127.0.0.1:1/x', 'https://127.0.0.1:1/x') },
  { weight: 2, arbitrary: anyString },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom('ext::', 'fd::', 'ssh://', 'https://', 'file://', '-', '--upload-pack=', 'ssh://127.0.0.1:1/', 'https://127.0.0.1:1/', 'git@wsd-prop.invalid:', '/', '.', 'https://u:%', 'file:///%'), anyString)
      .map(([prefix, rest]) => prefix + rest),
  },
);

const cloneTargetArb = fc.oneof(
  fc.constantFrom(
    '-x',
    `--upload-pack=${mark}`,
    `-c core.sshCommand=${mark}`,
    '--orphan',
    '..',
    'a..b',
    '@{-1}',
    '@',
    'HEAD@{1}',
    'a b',
    'deadbeef',
    'DEADBEEF'.repeat(8),
    '0'.repeat(64),
    '0'.repeat(65),
    'abc',
    'main',
    'refs/heads/main',
    '/abs',
    'a/',
    'a.',
    '.a',
    'a/.b',
    'a.lock',
    'a//b',
    '',
    ' ',
    '\n',
    'a\u0000b',
    `$(${mark})`,
  ),
  anyString,
  fc.string({ unit: hex, minLength: 1, maxLength: 70 }),
);

/** Paths from requests: traversal, absolute, option-like, names of planted symlinks, random segments. */
const relativePathArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(
    '',
    '.',
    '..',
    '../x',
    '/',
    '/tmp/wsd-prop-x',
    outside,
    `${outside}/x`,
    'a/../../b',
    'a/../b',
    'a/..',
    './',
    'evil',
    'evil/x',
    'evil/../x',
    'root',
    'root/wsdprop-x',
    'dangling',
    'dangling/x',
    'existing-dir',
    'existing-dir/keep',
    'existing-dir/new',
    'file',
    'file/x',
    `--upload-pack=${mark}`,
    '-x',
    '~',
    '~/x',
    '$HOME',
    'a\u0000b',
    'a\nb',
    'x.wsd-download',
    '.wsd-restore-x',
    '.git',
    '.git/hooks/post-checkout',
    'é/ü',
  ) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.boolean(), fc.array(fc.constantFrom('.', '..', '', 'a', 'b', 'evil', 'root', 'dangling', 'existing-dir', 'file', 'wsdprop-x', '-x', 'é', ' ', '.git'), { maxLength: 5 }))
      .map(([absolute, segments]) => `${absolute ? '/' : ''}${segments.join('/')}`),
  },
  { weight: 1, arbitrary: anyString },
);

const configKeyArb = fc.oneof(
  fc.constantFrom(
    'core.sshCommand',
    'Core.SshCommand',
    'CORE.SSHCOMMAND',
    'core.sshcommand',
    'core.gitProxy',
    'core.fsmonitor',
    'core.hooksPath',
    'core.pager',
    'core.editor',
    'core.askPass',
    'core.worktree',
    'core.alternateRefsCommand',
    'protocol.ext.allow',
    'Protocol.Ext.Allow',
    'protocol.allow',
    'protocol.file.allow',
    'include.path',
    'Include.Path',
    'includeIf.gitdir:/.path',
    'url.x.insteadOf',
    'url.ext::sh.insteadOf',
    'URL.x.insteadOf',
    'filter.x.clean',
    'filter.x.smudge',
    'filter.x.process',
    'Filter.X.Smudge',
    'credential.helper',
    'credential.https://x.helper',
    'diff.external',
    'diff.x.textconv',
    'gpg.program',
    'sequence.editor',
    'submodule.x.update',
    'remote.origin.url',
    'remote.origin.uploadpack',
    'uploadpack.packObjectsHook',
    'http.proxy',
    'http.sslCAInfo',
    'http.extraHeader',
    'safe.directory',
    'alias.clone',
    'init.templateDir',
    'ssh.variant',
    'core.autocrlf\n[core]\nsshCommand',
    'core.autocrlf',
    'user.name',
    'http.sslVerify',
    'protocol.version',
    'submodule.recurse',
    'help.autocorrect',
    'core.symlinks',
    '',
  ),
  anyString,
);

const configValueArb = fc.oneof(
  fc.constantFrom(
    mark,
    `touch ${canary}`,
    `!${mark}`,
    `!touch ${canary}`,
    'always',
    'true',
    evilConfig,
    `x\n[core]\n\tsshCommand = ${mark}`,
    `true\n[include]\npath=${evilConfig}`,
    `true\r[core]\r\tsshCommand = ${mark}`,
    'a\u0000b',
    'x'.repeat(2000),
    '',
  ),
  anyString,
);

const userOrPasswordArb = fc.oneof(
  fc.constantFrom(`$(${mark})`, `\`${mark}\``, `"; ${mark}; "`, `'; ${mark}; '`, `x\n${mark}`, `x\nhost=evil\npassword=$(${mark})`, ''),
  anyString,
);

/** Enum fields as the API delivers them: names, or numbers for values this wsd does not know. */
const authenticationArb = fc.constantFrom<unknown>('NO_AUTH', 'BASIC_AUTH', 'BASIC_AUTH_OTS', 3, 99, undefined);
const targetModeArb = fc.constantFrom<unknown>('REMOTE_HEAD', 'REMOTE_COMMIT', 'REMOTE_BRANCH', 'LOCAL_BRANCH', 4, 17, undefined);

function otsUrlArb() {
  const P = () => trap.port;
  return fc.oneof(
    fc.constantFrom('http://169.254.169.254/latest/meta-data/', 'file:///etc/passwd', 'data:,user:pass', 'not a url', ''),
    fc.constantFrom(0, 1, 2, 3, 4).map((i) => [`http://127.0.0.2:${P()}/ots`, `http://[::1]:${P()}/ots`, `http://0.0.0.0:${P()}/ots`, `http://localhost:${P()}/ots`, `http://127.0.0.1:${P()}/ots`][i]!),
    anyString,
  );
}

/** Mostly `benign`, sometimes `hostile`: one hostile field among accepted ones gets past validation to git. */
function mostly<T>(benign: fc.Arbitrary<T>, hostile: fc.Arbitrary<T>): fc.Arbitrary<T> {
  return fc.oneof({ weight: 4, arbitrary: benign }, { weight: 1, arbitrary: hostile });
}

function gitSpecArb() {
  // Remotes that pass the policy's checks (127.0.0.1 with loopbackGitPolicy) and fail fast: nothing listens on
  // port 1, `.invalid` never resolves.
  const benignRemote = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('ssh://127.0.0.1:1/x', 'https://127.0.0.1:1/x', 'ssh://git@127.0.0.1:1/~/x.git') },
    { weight: 1, arbitrary: fc.constantFrom('https://wsd-prop.invalid/x', 'git@wsd-prop.invalid:x') },
  );
  const target = mostly(
    fc.constantFrom<[unknown, unknown]>([undefined, undefined], ['REMOTE_HEAD', undefined], ['REMOTE_BRANCH', 'main'], ['REMOTE_COMMIT', 'deadbeef'], ['LOCAL_BRANCH', 'feature/x']),
    fc.tuple(targetModeArb, cloneTargetArb),
  );
  const config = mostly(
    fc.constantFrom<unknown>(undefined, null, {}, { custom_config: { 'core.autocrlf': 'input' } }, { authentication: 'NO_AUTH' }, { authentication: 'BASIC_AUTH', auth_user: 'u', auth_password: 'p' }),
    fc.record(
      {
        custom_config: fc.option(fc.dictionary(configKeyArb, configValueArb, { maxKeys: 4, noNullPrototype: true }), { nil: undefined }),
        authentication: authenticationArb,
        auth_user: userOrPasswordArb,
        auth_password: userOrPasswordArb,
        auth_ots: otsUrlArb(),
      },
      { requiredKeys: [], noNullPrototype: true },
    ),
  );
  return fc
    .record({
      remote_uri: mostly(benignRemote, remoteArb),
      upstream_Remote_uri: mostly(fc.constant(undefined), remoteArb),
      target,
      checkout_location: mostly(fc.constantFrom(undefined, '', 'src', 'a/b'), relativePathArb),
      config,
      full_clone: fc.option(fc.boolean(), { nil: undefined }),
    })
    .map(({ target: [mode, cloneTarget], ...rest }) => {
      // Fields the API leaves unset are absent, as protobuf delivers them.
      const spec: Record<string, unknown> = { ...rest, target_mode: mode, clone_taget: cloneTarget };
      for (const key of Object.keys(spec)) if (spec[key] === undefined) delete spec[key];
      return spec;
    });
}

function downloadUrlArb() {
  const G = () => good.port;
  const P = () => trap.port;
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom('/payload', '/big', '/404', '/500', '/ots').map((p) => `http://127.0.0.1:${G()}${p}`) },
    { weight: 3, arbitrary: fc.nat({ max: 19 }).map((i) => `http://127.0.0.1:${G()}/redirect/${i}`) },
    {
      weight: 3,
      arbitrary: fc
        .constantFrom(
          'file:///etc/passwd',
          'file:///',
          'data:,payload',
          'data:text/plain;base64,cGF5bG9hZAo=',
          'javascript:alert(1)',
          'http://169.254.169.254/latest/meta-data/iam/',
          'http://100.100.100.200/',
          'http://[fd00:ec2::254]/',
          'http://[::1]:{P}/',
          'http://0.0.0.0:{P}/',
          'http://[::]:{P}/',
          'http://127.0.0.2:{P}/',
          'http://2130706434:{P}/',
          'http://0x7f000002:{P}/',
          'http://127.2:{P}/',
          'http://0177.0.0.2:{P}/',
          'http://[::ffff:127.0.0.2]:{P}/',
          'http://[0:0:0:0:0:ffff:7f00:2]:{P}/',
          'http://[::ffff:7f00:2]:{P}/',
          'http://[fe80::1%25lo]:{P}/',
          'http://localhost:{P}/',
          'http://LOCALHOST.:{P}/',
          'https://127.0.0.2:{P}/',
          'http://user:pass@127.0.0.2:{P}/',
          'http://127.0.0.1:{G}@127.0.0.2:{P}/',
          'http://127.0.0.2:{P}#@127.0.0.1:{G}/',
          'http://127.0.0.1:{G}\\@127.0.0.2:{P}/',
          'ftp://127.0.0.2:{P}/',
          'gopher://127.0.0.2:{P}/',
          'http:///payload',
          'http://127.0.0.1:1/',
          'http://wsd-prop.invalid/',
        )
        .map((u) => u.replaceAll('{P}', String(P())).replaceAll('{G}', String(G()))),
    },
    { weight: 1, arbitrary: anyString.map((rest) => `http://127.0.0.1:${G()}/${rest}`) },
    { weight: 1, arbitrary: anyString },
  );
}

/**
 * Download specs. `focus` picks what is hostile: `paths` (file paths and target location; URL and digest right, so
 * files are really written), `urls` (URLs, redirects, digests; paths plain), or `all` (everything, for composites).
 */
function downloadSpecArb(focus: 'paths' | 'urls' | 'all' = 'all') {
  const G = () => good.port;
  const goodUrl = fc.constant(null).map(() => `http://127.0.0.1:${G()}/payload`);
  const rightDigest = fc.constant(`sha256:${payloadDigest}`);
  const digestArb = fc.oneof(
    { weight: 4, arbitrary: rightDigest },
    { weight: 1, arbitrary: fc.constant(`SHA256:${payloadDigest.toUpperCase()}`) },
    { weight: 1, arbitrary: fc.string({ unit: hex, minLength: 64, maxLength: 64 }).map((h) => `sha256:${h}`) },
    { weight: 1, arbitrary: anyString },
  );
  const plainPath = fc.constantFrom('f.txt', 'sub/f.txt', 'sub/g.txt');
  const pathArb = focus === 'urls' ? plainPath : fc.oneof({ weight: 1, arbitrary: plainPath }, { weight: 3, arbitrary: relativePathArb });
  const file = fc.record(
    {
      url: focus === 'paths' ? goodUrl : focus === 'urls' ? downloadUrlArb() : mostly(goodUrl, downloadUrlArb()),
      file_path: pathArb,
      digest: focus === 'paths' ? rightDigest : digestArb,
    },
    { requiredKeys: focus === 'all' ? [] : ['url', 'file_path', 'digest'], noNullPrototype: true },
  );
  const target = focus === 'urls' ? fc.constantFrom<string | undefined>(undefined, '', 'dl') : mostly(fc.constantFrom<string | undefined>(undefined, '', 'dl'), relativePathArb);
  return fc
    .record({
      files: fc.oneof({ weight: 9, arbitrary: fc.array(file, { minLength: 1, maxLength: 3 }) }, { weight: 1, arbitrary: fc.constantFrom<unknown>(undefined, []) }),
      target_location: target,
    })
    .map((spec) => {
      const out: Record<string, unknown> = { ...spec };
      for (const key of Object.keys(out)) if (out[key] === undefined) delete out[key];
      return out;
    });
}

function snapshotSpecArb() {
  const name = fc.oneof(
    fc.constantFrom('plant', 'through').map((k) => snapshots[k as 'plant' | 'through']),
    fc.constantFrom(
      'owner/workspaces/meta/snapshots/../snapshots/x.tar.zst',
      'owner/workspaces/../../etc/snapshots/x.tar.zst',
      '../owner/workspaces/meta/snapshots/x.tar.zst',
      '/owner/workspaces/meta/snapshots/x.tar.zst',
      'other/workspaces/meta/snapshots/x.tar.zst',
      'owner/workspaces/meta/snapshots/x.tar.zst\n',
      'owner/workspaces/meta/backups/latest.json',
      'owner/workspaces/meta/snapshots/.tar.zst',
      'owner/workspaces/meta/snapshots/..tar.zst',
      'owner/workspaces/meta/snapshots/\u0000.tar.zst',
      '',
    ),
    fc.tuple(fc.constantFrom('owner', 'other', '..', '.', ''), anyString).map(([owner, rest]) => `${owner}/workspaces/meta/snapshots/${rest}.tar.zst`),
    anyString,
  );
  return fc.record({ snapshot: name, from_volume_snapshot: fc.option(fc.boolean(), { nil: undefined }) }, { requiredKeys: [], noNullPrototype: true });
}

// ---------------------------------------------------------------------------------------------------------------
// Initializers (the default git policy: https and ssh, nothing local; short retries).

const otsSecrets = () => new OneTimeSecrets({ attempts: 1, delayMs: 1 });
const gitInitializer = () => new GitContentInitializer({ retryTimeoutMs: 0, initialRetryDelayMs: 10, secrets: otsSecrets() });
/**
 * The default policy, except that remotes may resolve to 127.0.0.1 (denied by default): nothing listens on port 1
 * there, so git really runs — with whatever a hostile spec got past the checks — and fails at once. Written as an
 * assertion so the file compiles whatever the policy's network fields are called; the test's diagnostic line says
 * how many runs reached git.
 */
const loopbackGitPolicy = { ...defaultGitRemotePolicy, allowedNetworks: ['127.0.0.1/32'] } as GitRemotePolicy;
const loopbackGitInitializer = () => new GitContentInitializer({ retryTimeoutMs: 0, initialRetryDelayMs: 10, secrets: otsSecrets(), policy: loopbackGitPolicy });
/** May download from the good server (127.0.0.1), nothing else local. */
const openDownload = () => new DownloadContentInitializer({ attempts: 2, initialRetryDelayMs: 1, allowedNetworks: ['127.0.0.1/32'], maxBytes: 1024 * 1024, timeoutMs: 3000 });
/** The default network policy: nothing local at all. */
const defaultDownload = () => new DownloadContentInitializer({ attempts: 1, initialRetryDelayMs: 1, timeoutMs: 3000 });
/** With 127.0.0.1 allowed, only connections that reached 127.0.0.1 itself are legitimate. */
const reached127001 = (c: { local: string }) => c.local === '127.0.0.1' || c.local === '::ffff:127.0.0.1';
/** In composites: downloads as above; git's one-time-secret fetches (path /ots) are the subject of their own test. */
const compositeTrapAllowed = (c: { local: string; path?: string }) => reached127001(c) || c.path === '/ots';

describe('property: initializer specs from requests', { concurrency: false }, () => {
  it('git: no hostile spec runs a command, writes outside the folder or leaves a process', { timeout: 600_000 }, async (t) => {
    const gits = [gitInitializer(), loopbackGitInitializer()];
    await check(
      t,
      fc.asyncProperty(gitSpecArb(), fc.boolean(), fc.nat({ max: 3 }), async (spec, planted, which) => {
        // The OTS fetch may reach the trap here; that is a test of its own below.
        await checkRun(gits[Math.min(which, 1)]!, spec, { plant: planted, refusedRunsNothing: true, trapAllowed: () => true, crashes: 'ignore' });
      }),
      assertOptions(0x5eed0001, 200),
      { gitRuns: 10 },
    );
  });

  it('git: every failure on a hostile spec is a WsdError', { timeout: 600_000 }, async (t) => {
    const gits = [gitInitializer(), loopbackGitInitializer()];
    await check(
      t,
      fc.asyncProperty(gitSpecArb(), fc.boolean(), fc.nat({ max: 3 }), async (spec, planted, which) => {
        await checkRun(gits[Math.min(which, 1)]!, spec, { plant: planted, refusedRunsNothing: true, trapAllowed: () => true });
      }),
      assertOptions(0x5eed0008, 100),
      { gitRuns: 5 },
    );
  });

  it('git: credentials with shell syntax reach the credential helper and run nothing (http remote that asks for them)', { timeout: 300_000 }, async (t) => {
    const git = new GitContentInitializer({
      retryTimeoutMs: 0,
      initialRetryDelayMs: 10,
      secrets: otsSecrets(),
      policy: { ...loopbackGitPolicy, protocols: ['http'] } as GitRemotePolicy,
    });
    await check(
      t,
      fc.asyncProperty(
        fc.constantFrom('BASIC_AUTH', 'BASIC_AUTH_OTS'),
        userOrPasswordArb,
        userOrPasswordArb,
        fc.option(fc.dictionary(configKeyArb, configValueArb, { maxKeys: 3, noNullPrototype: true }), { nil: undefined }),
        fc.constantFrom('', 'user@', 'us%24(er)@', 'u:p@'),
        async (authentication, user, password, customConfig, userinfo) => {
          const spec = {
            remote_uri: `http://${userinfo}127.0.0.1:${authServer.port}/repo.git`,
            config: { authentication, auth_user: user, auth_password: password, auth_ots: `data:,${encodeURIComponent(`${user}:${password}`)}`, custom_config: customConfig },
          };
          await checkRun(git, spec, { plant: false, refusedRunsNothing: true });
        },
      ),
      assertOptions(0x5eed0002, 50),
    );
  });

  it('git: the BASIC_AUTH_OTS secret is never fetched from a denied address (loopback, metadata)', { timeout: 120_000 }, async (t) => {
    // The remote must pass the policy for the secret to be fetched: 127.0.0.1 is allowed for remotes here, so the
    // secret may come from there too; every other loopback address, `::1`, 0.0.0.0 and metadata stay denied.
    const git = loopbackGitInitializer();
    await check(
      t,
      fc.asyncProperty(otsUrlArb(), async (ots) => {
        const spec = { remote_uri: 'https://127.0.0.1:1/repo.git', config: { authentication: 'BASIC_AUTH_OTS', auth_ots: ots } };
        await checkRun(git, spec, { plant: false, trapAllowed: reached127001 });
      }),
      assertOptions(0x5eed0003, 30),
    );
  });

  it('download: no file path or target location writes outside the folder (even for a moment) or through a planted symlink', { timeout: 300_000 }, async (t) => {
    const open = openDownload();
    await check(
      t,
      fc.asyncProperty(downloadSpecArb('paths'), fc.boolean(), async (spec, planted) => {
        await checkRun(open, spec, { plant: planted, trapAllowed: reached127001, watchSandbox: true, crashes: 'ignore' });
      }),
      assertOptions(0x5eed0004, 150),
    );
  });

  it('download: every failure on hostile file paths is a WsdError', { timeout: 300_000 }, async (t) => {
    const open = openDownload();
    await check(
      t,
      fc.asyncProperty(downloadSpecArb('paths'), fc.boolean(), async (spec, planted) => {
        await checkRun(open, spec, { plant: planted, trapAllowed: reached127001 });
      }),
      assertOptions(0x5eed0009, 100),
    );
  });

  it('download: no URL, redirect or digest reaches a denied address, writes outside the folder or throws a non-WsdError', { timeout: 300_000 }, async (t) => {
    const open = openDownload();
    const closed = defaultDownload();
    await check(
      t,
      fc.asyncProperty(downloadSpecArb('urls'), fc.boolean(), fc.boolean(), async (spec, planted, allowLoopback) => {
        await checkRun(allowLoopback ? open : closed, spec, { plant: planted, ...(allowLoopback ? { trapAllowed: reached127001 } : {}) });
      }),
      assertOptions(0x5eed0007, 150),
    );
  });

  it('snapshot: no name restores outside the folder or throws a non-WsdError', { timeout: 300_000 }, async (t) => {
    const snapshot = new SnapshotContentInitializer();
    await check(
      t,
      fc.asyncProperty(snapshotSpecArb(), fc.boolean(), async (spec, planted) => {
        await checkRun(snapshot, spec, { plant: planted, refusedRunsNothing: true });
      }),
      assertOptions(0x5eed0005, 100),
    );
  });

  /** Composite specs: up to four children of every kind, composites nested three deep. */
  const compositeSpecArb = () => {
    const { message } = fc.letrec((tie) => ({
      message: fc.oneof(
        { depthSize: 'small', maxDepth: 3 },
        fc.constant<unknown>({ kind: 'empty', spec: {} }),
        fc.record({ kind: fc.constant('git'), spec: gitSpecArb() }, { noNullPrototype: true }),
        fc.record({ kind: fc.constant('download'), spec: downloadSpecArb() }, { noNullPrototype: true }),
        fc.record({ kind: fc.constant('snapshot'), spec: snapshotSpecArb() }, { noNullPrototype: true }),
        fc.record(
          { kind: fc.constant('composite'), spec: fc.record({ initializer: fc.array(tie('message'), { maxLength: 3 }) }, { requiredKeys: [], noNullPrototype: true }) },
          { noNullPrototype: true },
        ),
        fc.constantFrom<unknown>(null, {}, { kind: '' }, { kind: 'git' }, { kind: 'git', spec: null }, { kind: 'backup', spec: {} }, { kind: 'prebuild', spec: {} }, { kind: 'nope' }, { kind: '__proto__' }, { kind: 'constructor' }, { kind: 'toString' }),
      ),
    }));
    return fc.array(message, { maxLength: 4 }).map((initializer) => ({ initializer }));
  };
  const compositeHelpers = (composite: CompositeContentInitializer) => [
    composite,
    loopbackGitInitializer(),
    openDownload(),
    new SnapshotContentInitializer(),
    new EmptyContentInitializer(),
    new BackupContentInitializer(),
  ];

  it('composite: nested specs of every kind never write outside the folder, run a command or leave a process', { timeout: 600_000 }, async (t) => {
    const composite = new CompositeContentInitializer();
    const helpers = compositeHelpers(composite);
    await check(
      t,
      fc.asyncProperty(compositeSpecArb(), fc.boolean(), async (spec, planted) => {
        await checkRun(composite, spec, { plant: planted, helpers, trapAllowed: compositeTrapAllowed, watchSandbox: true, crashes: 'ignore' });
      }),
      assertOptions(0x5eed0006, 100),
    );
  });

  it('composite: every failure of nested specs is a WsdError', { timeout: 600_000 }, async (t) => {
    const composite = new CompositeContentInitializer();
    const helpers = compositeHelpers(composite);
    await check(
      t,
      fc.asyncProperty(compositeSpecArb(), fc.boolean(), async (spec, planted) => {
        await checkRun(composite, spec, { plant: planted, helpers, trapAllowed: compositeTrapAllowed });
      }),
      assertOptions(0x5eed000a, 60),
    );
  });
});
