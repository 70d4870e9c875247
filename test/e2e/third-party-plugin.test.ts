import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { status, type ServiceError } from '@grpc/grpc-js';
import { WsdClient } from '../../core/api/client.js';
import { toServiceError } from '../../core/api/grpc-status.js';
import { packageRoot } from '../../core/config/package-root.js';
import { isWsdError, WsdError } from '../../core/errors.js';
import { storageBackendToken } from '../../core/plugin-api.js';
import { storageBackendConformance } from '../conformance/index.js';
import { runWsd, startDaemonProcess, testDaemonConfig, type DaemonProcess } from '../kit/daemon-process.js';
import { tempDir } from '../kit/temp-dir.js';

/**
 * Issue 13's acceptance: a third-party plugin gets what the built-ins get. The fixture `test/fixtures/third-party-plugin`
 * (package `wsd-plugin-folder-storage`, plain ESM JavaScript with JSDoc types) is laid out as an install of its own,
 *
 *   <tmp>/plugin/                     the fixture's files and package.json
 *   <tmp>/plugin/node_modules/wsd/    a COPY of wsd's package.json, dist/, bin/, config/ and proto/ (what npm pack ships)
 *   <tmp>/plugin/node_modules/zod/    a COPY of zod (the plugin's config schema is built with the z of its own wsd)
 *   <tmp>/plugin/node_modules/<x>     symlinks to the repo's other node_modules (wsd's runtime deps, vitest, tsc)
 *
 * so the plugin's `WsdError`, tokens and helpers are other module instances than the daemon's. There it passes the
 * storage conformance suite under node:test and under vitest, type-checks against the installed wsd's declarations,
 * and then the real daemon from this repo loads it by path and keeps backups in it.
 */

const repo = packageRoot();
const fixture = path.join(repo, 'test', 'fixtures', 'third-party-plugin');
const subRunnerTimeoutMs = 75_000;

/** The number of cases in the storage suite: what each runner must have executed (setup is never called here). */
const storageCases = storageBackendConformance('count', async () => assert.fail('not run')).cases;
const optionalCasesSkipped = storageCases.filter((c) => /^\(optional: (conditionalReplace|presign)\)/.test(c.name)).length;

function layOutPluginInstall(root: string): string {
  const plugin = path.join(root, 'plugin');
  cpSync(fixture, plugin, { recursive: true, filter: (src) => path.basename(src) !== 'node_modules' });
  const modules = path.join(plugin, 'node_modules');
  const wsd = path.join(modules, 'wsd');
  mkdirSync(wsd, { recursive: true });
  copyFileSync(path.join(repo, 'package.json'), path.join(wsd, 'package.json'));
  for (const folder of ['dist', 'bin', 'config', 'proto']) {
    cpSync(path.join(repo, folder), path.join(wsd, folder), { recursive: true, filter: (src) => !src.endsWith('.map') });
  }
  cpSync(path.join(repo, 'node_modules', 'zod'), path.join(modules, 'zod'), { recursive: true });
  for (const entry of readdirSync(path.join(repo, 'node_modules'))) {
    // Dot entries (.bin, .package-lock.json, caches) stay out: vitest writes its cache to node_modules/.vite.
    if (entry.startsWith('.') || entry === 'wsd' || entry === 'zod') continue;
    symlinkSync(path.join(repo, 'node_modules', entry), path.join(modules, entry));
  }
  return plugin;
}

interface Run {
  code: number | null;
  signal: string | null;
  output: string;
  ms: number;
}

/** Runs `node <args>` in `cwd` to completion (killed after {@link subRunnerTimeoutMs}), stdout and stderr together. */
async function runNode(args: string[], cwd: string, tmp: string): Promise<Run> {
  const started = Date.now();
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp, FORCE_COLOR: '0', NO_COLOR: '1' };
  // Set by the node:test run this file is in; a nested `node --test` would report to it instead of printing TAP.
  delete env.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => {
    output += `\n[killed after ${subRunnerTimeoutMs} ms]\n`;
    child.kill('SIGKILL');
  }, subRunnerTimeoutMs);
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.once('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  return { code, signal, output, ms: Date.now() - started };
}

const explain = (what: string, run: Run) => `${what} (exit ${run.code ?? run.signal}, ${run.ms} ms); its output:\n${run.output}`;

/** The counts of a TAP summary (`# tests 24`, `# pass 21`, …). */
function tapSummary(output: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const [, name, n] of output.matchAll(/^# (tests|suites|pass|fail|cancelled|skipped|todo) (\d+)$/gm)) counts[name!] = Number(n);
  return counts;
}

/** The file that keeps `key` in the fixture's layout: `a/b/c` is `<root>/a.d/b.d/c.o`. */
const objectFile = (root: string, key: string) =>
  path.join(root, ...key.split('/').map((segment, i, all) => (i < all.length - 1 ? `${segment}.d` : `${segment}.o`)));

describe('a third-party plugin that bundles its own copy of wsd', () => {
  let root: string;
  let plugin: string;
  let subTmp: string;
  const timings: string[] = [];

  before(() => {
    const started = Date.now();
    root = tempDir('wsd-third-party-');
    plugin = layOutPluginInstall(root);
    subTmp = path.join(root, 'tmp');
    mkdirSync(subTmp);
    timings.push(`layout ${Date.now() - started} ms`);
  });
  after(() => console.log(`third-party plugin timings: ${timings.join(', ')}`));

  it('gets a separate module instance of wsd, whose errors the daemon still recognises by brand', async () => {
    const copy = (await import(pathToFileURL(path.join(plugin, 'node_modules', 'wsd', 'dist', 'core', 'errors.js')).href)) as typeof import('../../core/errors.js');
    const api = (await import(pathToFileURL(path.join(plugin, 'node_modules', 'wsd', 'dist', 'core', 'plugin-api.js')).href)) as typeof import('../../core/plugin-api.js');
    assert.notEqual(copy.WsdError, WsdError, 'the plugin has its own WsdError class');
    assert.equal(api.WsdError, copy.WsdError);
    const theirs = new copy.WsdError('NOT_FOUND', 'no such object');
    assert.equal(theirs instanceof WsdError, false, 'instanceof would not recognise it');
    assert.ok(isWsdError(theirs, 'NOT_FOUND'), 'the brand does');
    assert.equal(toServiceError(theirs).code, status.NOT_FOUND);
    assert.notEqual(api.storageBackendToken, storageBackendToken, 'its own token object…');
    assert.equal(api.storageBackendToken.id, storageBackendToken.id, '…with the id the kernel matches tokens by');
  });

  it('type-checks against the declarations of the wsd it installed (tsc --noEmit, checkJs)', async () => {
    const run = await runNode([path.join(plugin, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], plugin, subTmp);
    timings.push(`tsc ${run.ms} ms`);
    assert.equal(run.code, 0, explain('tsc -p tsconfig.json failed in the plugin install', run));
  });

  it('passes the storage conformance suite under node:test in its own install', async () => {
    const run = await runNode(['--test', '--test-reporter=tap', 'test/conformance.node-test.js'], plugin, subTmp);
    timings.push(`node:test ${run.ms} ms`);
    assert.equal(run.code, 0, explain('node --test test/conformance.node-test.js failed', run));
    const counts = tapSummary(run.output);
    assert.equal(counts.tests, storageCases.length, explain('node:test did not run every case of the suite', run));
    assert.equal(counts.fail, 0, explain('node:test reports failures', run));
    assert.equal(counts.cancelled, 0, explain('node:test reports cancelled cases', run));
    assert.equal(counts.skipped, optionalCasesSkipped, explain('node:test: only the optional cases the plugin does not declare are skipped', run));
    assert.equal(counts.pass, storageCases.length - optionalCasesSkipped, explain('node:test pass count', run));
  });

  it('passes the same suite under vitest in its own install', async () => {
    const report = path.join(root, 'vitest-report.json');
    const vitest = path.join(plugin, 'node_modules', 'vitest', 'vitest.mjs');
    const run = await runNode([vitest, 'run', '--reporter=verbose', '--reporter=json', `--outputFile=${report}`], plugin, subTmp);
    timings.push(`vitest ${run.ms} ms`);
    assert.equal(run.code, 0, explain('vitest run failed', run));
    assert.ok(existsSync(report), explain('vitest wrote no JSON report', run));
    const result = JSON.parse(readFileSync(report, 'utf8')) as { success: boolean; numTotalTests: number; numPassedTests: number; numFailedTests: number; numPendingTests: number };
    assert.equal(result.numTotalTests, storageCases.length, explain('vitest did not run every case of the suite', run));
    assert.equal(result.numFailedTests, 0, explain('vitest reports failures', run));
    assert.equal(result.numPendingTests, optionalCasesSkipped, explain('vitest: only the optional cases the plugin does not declare are skipped', run));
    assert.equal(result.numPassedTests, storageCases.length - optionalCasesSkipped, explain('vitest pass count', run));
    assert.ok(result.success, explain('vitest reports no success', run));
  });

  it('is listed by `wsd plugins --config`, by path and by package name', async () => {
    const entry = path.join(plugin, 'index.js');
    const byPath = path.join(root, 'by-path');
    mkdirSync(byPath);
    const listed = await runWsd(['plugins', '--config', testDaemonConfig(byPath, `plugins: [${JSON.stringify(entry)}]\nstorage:\n  plugin: folder\n`)]);
    assert.equal(listed.code, 0, listed.stderr);
    const escaped = entry.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    assert.match(listed.stdout, new RegExp(`^storage +folder +${escaped} +Objects as files in a folder`, 'm'));
    assert.match(listed.stdout, new RegExp(`^1\\. +storage/folder +${escaped}`, 'm'));

    // A host that installed the package: `plugins: [wsd-plugin-folder-storage]`, resolved from the config's folder.
    const byName = path.join(root, 'by-name');
    mkdirSync(path.join(byName, 'node_modules'), { recursive: true });
    symlinkSync(plugin, path.join(byName, 'node_modules', 'wsd-plugin-folder-storage'));
    const named = await runWsd(['plugins', '--config', testDaemonConfig(byName, 'plugins: [wsd-plugin-folder-storage]\nstorage:\n  plugin: folder\n')]);
    assert.equal(named.code, 0, named.stderr);
    assert.match(named.stdout, /^storage +folder +wsd-plugin-folder-storage +Objects as files in a folder/m);
  });

  it('keeps the real daemon\'s backups: init → write → backup → dispose → init from backup, and its NOT_FOUND stays NOT_FOUND', async () => {
    const started = Date.now();
    const dir = path.join(root, 'daemon');
    mkdirSync(dir);
    const entry = path.join(plugin, 'index.js');
    const objects = path.join(dir, 'objects');
    const config = testDaemonConfig(
      dir,
      `plugins: [${JSON.stringify(entry)}]\nstorage:\n  plugin: folder\n  folder:\n    root: ./objects\nhealth:\n  working-area: {}\n  storage: { critical: true }\n`,
    );
    let daemon: DaemonProcess | undefined;
    let client: WsdClient | undefined;
    let stopped: number | string | undefined;
    const context = () => (daemon ? `\ndaemon stderr: ${daemon.stderr()}\ndaemon log:\n${daemon.logs.map((l) => JSON.stringify(l)).join('\n')}` : '');
    try {
      daemon = await startDaemonProcess({ args: ['--config', config] });
      client = new WsdClient({ address: daemon.grpcAddress, timeoutMs: 30_000 });
      const pluginLine = daemon.logs.find((l) => l.msg === 'plugin' && l.kind === 'storage');
      assert.deepEqual(
        pluginLine && { id: pluginLine.id, source: pluginLine.source, status: pluginLine.status },
        { id: 'folder', source: entry, status: 'ok' },
        `the daemon runs storage/folder from the plugin install${context()}`,
      );
      assert.ok(daemon.logs.some((l) => l.msg === 'folder storage' && l.root === objects), `create() got its validated config and a logger${context()}`);

      const workspaces = path.join(dir, 'data', 'workspaces');
      await client.initWorkspace({ id: 'tp-1', metadata: { owner: 'erin', meta_id: 'tp' }, initializer: { empty: {} } });
      mkdirSync(path.join(workspaces, 'tp-1', 'src'));
      writeFileSync(path.join(workspaces, 'tp-1', 'src', 'hello.txt'), 'kept by a third-party backend ✓\n');
      writeFileSync(path.join(workspaces, 'tp-1', 'data.bin'), Buffer.alloc(256 * 1024, 'wsd'));

      const backupKey = await client.backupWorkspace('tp-1');
      assert.match(backupKey, /^erin\/workspaces\/tp\/backups\/.+\.(?:tar|tree)\.zst$/);
      assert.ok(existsSync(objectFile(objects, backupKey)), `the archive is a file in the plugin's folder: ${objectFile(objects, backupKey)}`);
      await client.disposeWorkspace('tp-1', { backup: true });
      assert.equal(existsSync(path.join(workspaces, 'tp-1')), false);

      await client.initWorkspace({ id: 'tp-2', metadata: { owner: 'erin', meta_id: 'tp' }, initializer: { backup: {} } });
      assert.equal(readFileSync(path.join(workspaces, 'tp-2', 'src', 'hello.txt'), 'utf8'), 'kept by a third-party backend ✓\n');
      assert.deepEqual(readFileSync(path.join(workspaces, 'tp-2', 'data.bin')), Buffer.alloc(256 * 1024, 'wsd'));
      assert.equal(JSON.parse(readFileSync(path.join(workspaces, 'tp-2', '.gitpod', 'ready'), 'utf8')).source, 'from-backup');
      const { latest } = await client.listBackups({ owner: 'erin', meta_id: 'tp' });
      assert.ok(latest && existsSync(objectFile(objects, latest)), `ListBackups names an archive in the plugin's folder: ${latest}`);

      // The plugin's get throws NOT_FOUND of ITS OWN WsdError class; core recognises it by brand (else: INTERNAL).
      // (A workspace with a backup is restored from it whatever the initializer says: hence another meta id.)
      const missing = 'erin/workspaces/never-snapshotted/snapshots/20260101T000000Z-00000000.tar.zst';
      await assert.rejects(
        client.initWorkspace({ id: 'tp-3', metadata: { owner: 'erin', meta_id: 'never-snapshotted' }, initializer: { snapshot: { snapshot: missing } } }),
        (error: ServiceError) => {
          assert.equal(error.code, status.NOT_FOUND, `a missing snapshot is NOT_FOUND, got ${error.code}: ${error.details}`);
          assert.match(error.details, /does not exist/);
          return true;
        },
      );

      // A built-in health check that `requires` the storage token gets the third-party instance.
      const ready = await fetch(`http://${daemon.httpAddress}/readyz`);
      const body = (await ready.json()) as { ready: boolean; checks: Array<{ name: string; status: string }> };
      assert.equal(body.checks.find((c) => c.name === 'storage')?.status, 'ok', JSON.stringify(body));
      assert.equal(ready.status, 200, JSON.stringify(body));
    } catch (error) {
      // The daemon's side of the story; the stack is what the runner prints.
      if (error instanceof Error) error.stack = `${error.stack}${context()}`;
      throw error;
    } finally {
      client?.close();
      stopped = daemon ? await daemon.stop('SIGTERM') : undefined;
      timings.push(`daemon ${Date.now() - started} ms`);
    }
    assert.equal(stopped, 0, `the daemon stops cleanly${context()}`);
  });
});
