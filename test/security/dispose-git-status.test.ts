/**
 * Same class as probe finding #1 (git config → command execution), at the other end of a workspace's life:
 * DescribeWorkspace and DisposeWorkspace read the git status of the workspace's checkout, whose `.git` the
 * workspace user wrote. The daemon runs that git (as root here: the content is root's and no workspaces.uid is set),
 * so nothing the repository's config names may run.
 */
import { chmodSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sh } from '../kit/git-fixtures.js';
import { assertNotCreated, markerPath, meta, plantRepo, removeMarkers, startTestDaemon, type TestDaemon } from '../kit/security-fixtures.js';
import { tempDir } from '../kit/temp-dir.js';

/**
 * Same size, other mtime: git cannot tell from the index whether the file changed and hashes it — through the clean
 * filter. (A changed size would be "modified" without reading the file, and no filter would run.)
 */
function touchOnly(file: string): void {
  utimesSync(file, new Date('2001-01-01T00:00:00Z'), new Date('2001-01-01T00:00:00Z'));
}

describe('security: git status of a workspace at describe and dispose (#1 class)', () => {
  let wsd: TestDaemon;
  let root: string;
  let n = 0;
  const id = (label: string) => `${label}-${++n}`;

  /** An `empty` workspace whose folder the "user" turns into a repository with `prepare`. */
  async function userRepo(prepare: (folder: string) => void): Promise<string> {
    const ws = id('status');
    await wsd.client.initWorkspace({ id: ws, metadata: meta(ws), initializer: { empty: {} } });
    const folder = wsd.folder(ws);
    sh(folder, 'init', '-q', '-b', 'main');
    writeFileSync(path.join(folder, 'a.txt'), 'a\n');
    sh(folder, 'add', 'a.txt');
    sh(folder, 'commit', '-q', '-m', 'one');
    prepare(folder);
    return ws;
  }

  /** Describe, then dispose: the marker must not appear after either. */
  async function readStatus(ws: string, marker: string, what: string): Promise<void> {
    await wsd.client.describeWorkspace(ws).catch(() => undefined);
    assertNotCreated(marker, `${what} — ran during DescribeWorkspace`);
    await wsd.client.disposeWorkspace(ws).catch(() => undefined);
    assertNotCreated(marker, `${what} — ran during DisposeWorkspace`);
  }

  before(async () => {
    root = tempDir('wsd-sec-status-repos-');
    wsd = await startTestDaemon(tempDir('wsd-sec-status-'), { git: { protocols: ['https', 'http', 'file'], localRoots: [root], allowedNetworks: ['127.0.0.1/32'] } });
  });
  after(async () => {
    await wsd?.stop();
    removeMarkers();
  });

  it('#1 class, dispose git status: a clean filter of the workspace\'s own .git/config does not run', async () => {
    const marker = markerPath('status-filter');
    const ws = await userRepo((folder) => {
      sh(folder, 'config', 'filter.evil.clean', `touch ${marker}; cat`);
      sh(folder, 'config', 'filter.evil.required', 'true');
      mkdirSync(path.join(folder, '.git', 'info'), { recursive: true });
      writeFileSync(path.join(folder, '.git', 'info', 'attributes'), '* filter=evil\n');
      touchOnly(path.join(folder, 'a.txt'));
    });
    await readStatus(ws, marker, "the workspace's filter.evil.clean ran as the daemon");
  });

  it('#1 class, dispose git status: gpg.program (through log.showSignature and a commit with a gpgsig header) does not run', async () => {
    const marker = markerPath('status-gpg');
    const ws = await userRepo((folder) => {
      const tree = sh(folder, 'rev-parse', 'HEAD^{tree}');
      const parent = sh(folder, 'rev-parse', 'HEAD');
      const commit = `tree ${tree}\nparent ${parent}\nauthor t <t@t> 1700000000 +0000\ncommitter t <t@t> 1700000000 +0000\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n x\n -----END PGP SIGNATURE-----\n\nsigned\n`;
      writeFileSync(path.join(folder, '.git', 'commit.txt'), commit);
      const signed = sh(folder, 'hash-object', '-t', 'commit', '-w', '.git/commit.txt');
      sh(folder, 'update-ref', 'refs/heads/main', signed);
      const program = path.join(folder, '.git', 'fake-gpg');
      writeFileSync(program, `#!/bin/sh\ntouch ${marker}\nexit 1\n`);
      chmodSync(program, 0o755);
      sh(folder, 'config', 'log.showSignature', 'true');
      sh(folder, 'config', 'gpg.program', program);
    });
    await readStatus(ws, marker, 'gpg.program from the workspace\'s .git/config ran as the daemon (git log with log.showSignature=true verifies the signed HEAD commit)');
  });

  it('#1 class, dispose git status: a clean filter in a submodule\'s config does not run', async () => {
    const marker = markerPath('status-submodule-filter');
    const sub = plantRepo(root, 'sublib', { 's.txt': 'sub\n' });
    const ws = await userRepo((folder) => {
      sh(folder, 'submodule', 'add', '-q', sub, 'sub');
      sh(folder, 'commit', '-q', '-m', 'submodule');
      const subGit = path.join(folder, '.git', 'modules', 'sub');
      sh(folder, '--git-dir', subGit, 'config', 'filter.evil.clean', `touch ${marker}; cat`);
      sh(folder, '--git-dir', subGit, 'config', 'filter.evil.required', 'true');
      mkdirSync(path.join(subGit, 'info'), { recursive: true });
      writeFileSync(path.join(subGit, 'info', 'attributes'), '* filter=evil\n');
      touchOnly(path.join(folder, 'sub', 's.txt'));
    });
    await readStatus(ws, marker, "a submodule's filter.evil.clean ran as the daemon (git status recurses into submodules; only the top repository's filters are neutralized)");
  });
});
