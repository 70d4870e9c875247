/**
 * Probe finding #3: writes outside the workspace folder through a symlink that earlier content (a cloned
 * repository) planted. Each test points a committed symlink at a fresh folder in /tmp and asserts that nothing gets
 * written there, whatever the daemon answers.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import {
  markerPath,
  meta,
  plantRepo,
  rejectsWith,
  removeMarkers,
  startCountingServer,
  startTestDaemon,
  type CountingServer,
  type TestDaemon,
} from '../kit/security-fixtures.js';
import { tempDir } from '../kit/temp-dir.js';

describe('security: writes outside the workspace through planted symlinks (#3)', () => {
  let wsd: TestDaemon;
  let root: string;
  let server: CountingServer;
  const payload = 'downloaded payload\n';
  const digest = `sha256:${createHash('sha256').update(payload).digest('hex')}`;
  let n = 0;
  const id = (label: string) => `${label}-${++n}`;

  /** A fresh, empty folder outside the workspace that a planted symlink leads to. */
  function outside(label: string): string {
    const dir = markerPath(`out-${label}`);
    mkdirSync(dir);
    return dir;
  }
  function assertUntouched(dir: string, what: string): void {
    const entries = readdirSync(dir);
    assert.deepEqual(entries, [], `HOLE OPEN: ${what} — the daemon wrote ${JSON.stringify(entries)} into ${dir}, outside the workspace`);
  }
  /** Runs an init that must not succeed in writing outside; returns how it ended, for messages. */
  async function attempt(request: Parameters<TestDaemon['client']['initWorkspace']>[0]): Promise<string> {
    return wsd.client.initWorkspace(request).then(
      () => 'succeeded',
      (error: { code: number; details: string }) => `failed with ${status[error.code]}: ${error.details}`,
    );
  }

  before(async () => {
    root = tempDir('wsd-sec-escape-repos-');
    server = await startCountingServer({ body: payload });
    // 127.0.0.1 is allowed for downloads here, so that the download reaches the symlink check instead of being
    // refused for its address.
    wsd = await startTestDaemon(tempDir('wsd-sec-escape-'), {
      git: { protocols: ['https', 'http', 'file'], localRoots: [root], allowedNetworks: ['127.0.0.1/32'] },
      download: { allowedNetworks: ['127.0.0.1/32'] },
    });
  });
  after(async () => {
    await wsd?.stop();
    await server?.close();
    removeMarkers();
  });

  it('#3 composite [git(repo with symlink evil → /tmp/out-…), git(checkout_location evil/cloned)]: FAILED_PRECONDITION, nothing written outside', async () => {
    const out = outside('composite-git');
    const evil = plantRepo(root, `evil-${n}`, { evil: { symlink: out }, 'README.md': 'evil\n' });
    const other = plantRepo(root, `other-${n}`, { 'other.txt': 'other\n' });
    const ws = id('escape-git');
    await rejectsWith(
      wsd.client.initWorkspace({
        id: ws,
        metadata: meta(ws),
        initializer: { composite: { initializer: [{ git: { remote_uri: evil } }, { git: { remote_uri: other, checkout_location: 'evil/cloned' } }] } },
      }),
      status.FAILED_PRECONDITION,
    ).catch((error: Error) => {
      assertUntouched(out, 'second git child cloned through the symlink');
      throw error;
    });
    assertUntouched(out, 'second git child cloned through the symlink');
  });

  it('#3 composite: a checkout_location that is itself a committed symlink to an outside folder is refused, nothing written outside', async () => {
    const out = outside('composite-leaf');
    const evil = plantRepo(root, `evil-leaf-${n}`, { evil: { symlink: out } });
    const other = plantRepo(root, `other-leaf-${n}`, { 'other.txt': 'other\n' });
    const ws = id('escape-leaf');
    const outcome = await attempt({
      id: ws,
      metadata: meta(ws),
      initializer: { composite: { initializer: [{ git: { remote_uri: evil } }, { git: { remote_uri: other, checkout_location: 'evil' } }] } },
    });
    assertUntouched(out, `second git child cloned into the symlink itself (init ${outcome})`);
    assert.match(outcome, /FAILED_PRECONDITION/);
  });

  it('#3 composite [git(symlink dl → /tmp/out-…), download(file_path dl/file.txt)]: nothing written outside', async () => {
    const out = outside('download-path');
    const evil = plantRepo(root, `evil-dl-${n}`, { dl: { symlink: out } });
    const ws = id('escape-dl');
    const outcome = await attempt({
      id: ws,
      metadata: meta(ws),
      initializer: { composite: { initializer: [{ git: { remote_uri: evil } }, { download: { files: [{ url: `${server.origin}/file.txt`, file_path: 'dl/file.txt', digest }] } }] } },
    });
    assertUntouched(out, `download wrote through the symlinked folder (init ${outcome})`);
    assert.match(outcome, /FAILED_PRECONDITION/);
  });

  it('#3 composite [git(symlink dl → /tmp/out-…), download(target_location dl)]: nothing written outside', async () => {
    const out = outside('download-target');
    const evil = plantRepo(root, `evil-dlt-${n}`, { dl: { symlink: out } });
    const ws = id('escape-dlt');
    const outcome = await attempt({
      id: ws,
      metadata: meta(ws),
      initializer: { composite: { initializer: [{ git: { remote_uri: evil } }, { download: { target_location: 'dl', files: [{ url: `${server.origin}/file.txt`, file_path: 'file.txt', digest }] } }] } },
    });
    assertUntouched(out, `download wrote into the symlinked target_location (init ${outcome})`);
    assert.match(outcome, /FAILED_PRECONDITION/);
  });

  it('#3 composite [git(file.txt → /tmp/out-…/victim), download(file_path file.txt)]: the outside file is not overwritten', async () => {
    const out = outside('download-leaf');
    const victim = `${out}/victim`;
    writeFileSync(victim, 'original\n');
    const evil = plantRepo(root, `evil-dll-${n}`, { 'file.txt': { symlink: victim } });
    const ws = id('escape-dll');
    const outcome = await attempt({
      id: ws,
      metadata: meta(ws),
      initializer: { composite: { initializer: [{ git: { remote_uri: evil } }, { download: { files: [{ url: `${server.origin}/file.txt`, file_path: 'file.txt', digest }] } }] } },
    });
    assert.equal(readFileSync(victim, 'utf8'), 'original\n', `HOLE OPEN: download overwrote ${victim} through the committed symlink (init ${outcome})`);
    assert.deepEqual(readdirSync(out), ['victim']);
    if (outcome === 'succeeded') await wsd.client.disposeWorkspace(ws);
  });

  it('#3 class: the ready marker is not written through a committed .gitpod symlink', async () => {
    const out = outside('ready-marker');
    const evil = plantRepo(root, `evil-ready-${n}`, { '.gitpod': { symlink: out } });
    const ws = id('escape-ready');
    const outcome = await attempt({ id: ws, metadata: meta(ws), initializer: { git: { remote_uri: evil } } });
    assertUntouched(out, `the ready marker was written through .gitpod (init ${outcome})`);
    if (outcome === 'succeeded') await wsd.client.disposeWorkspace(ws);
  });

  it('#3 class: checkout_location and download paths that leave the folder as text are INVALID_ARGUMENT', async () => {
    const other = plantRepo(root, `plain-${n}`, { 'x.txt': 'x\n' });
    const out = outside('lexical');
    for (const checkout_location of ['../escape', out, 'a/../../escape']) {
      const ws = id('lexical-git');
      await rejectsWith(wsd.client.initWorkspace({ id: ws, metadata: meta(ws), initializer: { git: { remote_uri: other, checkout_location } } }), status.INVALID_ARGUMENT, {
        field: 'initializer.git.checkout_location',
      });
    }
    for (const [target_location, file_path, field] of [
      ['', '../escape.txt', 'initializer.download.files[0].file_path'],
      ['', `${out}/abs.txt`, 'initializer.download.files[0].file_path'],
      ['..', 'escape.txt', 'initializer.download.target_location'],
    ] as const) {
      const ws = id('lexical-dl');
      await rejectsWith(
        wsd.client.initWorkspace({ id: ws, metadata: meta(ws), initializer: { download: { target_location, files: [{ url: `${server.origin}/f`, file_path, digest }] } } }),
        status.INVALID_ARGUMENT,
        { field },
      );
    }
    assertUntouched(out, 'a lexical escape wrote outside');
    assert.equal(existsSync(`${wsd.workingArea}/escape`), false);
    assert.equal(existsSync(`${wsd.workingArea}/escape.txt`), false);
  });
});
