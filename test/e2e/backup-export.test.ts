import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, closeSync, existsSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { runWsd, runWsdInTerminal, startDaemonProcess, testDaemonConfig, wsdBin, type DaemonProcess } from '../kit/daemon-process.js';
import { tempDir } from '../kit/temp-dir.js';
import { firstDifference, treeManifest } from '../kit/tree-hash.js';

const run = promisify(execFile);

/** The ready marker is left out of every archive by design (docs/operations.md); its folder is archived. */
const notMarker = (rel: string) => rel === path.join('.gitpod', 'ready');

describe('wsd client export (through a real daemon)', () => {
  let dir: string;
  let daemon: DaemonProcess;
  let folder: string;
  const wsd = (...args: string[]) => runWsd(['client', '--address', daemon.grpcAddress, ...args]);

  /** Extracts a .tar.zst with GNU tar into a fresh folder. */
  const extract = async (archive: string) => {
    const out = tempDir('wsd-export-x-');
    await run('tar', ['--zstd', '-xf', archive, '-C', out]);
    return out;
  };

  before(async () => {
    dir = tempDir('wsd-export-e2e-');
    daemon = await startDaemonProcess({ args: ['--config', testDaemonConfig(dir)] });
    const r = await wsd('init', 'exp-1', '--owner', 'erin', '--meta-id', 'ex', '--empty');
    assert.equal(r.code, 0, r.stderr);
    folder = path.join(dir, 'data', 'workspaces', 'exp-1');
    mkdirSync(path.join(folder, 'src/nested/deeper'), { recursive: true });
    writeFileSync(path.join(folder, 'src/main.ts'), 'console.log("hi");\n');
    writeFileSync(path.join(folder, 'src/nested/deeper/blob.bin'), Buffer.alloc(2 * 1024 * 1024, 3));
    writeFileSync(path.join(folder, 'run.sh'), '#!/bin/sh\n');
    chmodSync(path.join(folder, 'run.sh'), 0o750);
    writeFileSync(path.join(folder, 'empty'), '');
    mkdirSync(path.join(folder, 'empty-dir'));
    mkdirSync(path.join(folder, 'ünïcödé'));
    writeFileSync(path.join(folder, 'ünïcödé', `${'long-name-'.repeat(15)}.txt`), 'long');
    linkSync(path.join(folder, 'src/main.ts'), path.join(folder, 'main-hardlink.ts'));
    symlinkSync('src/main.ts', path.join(folder, 'main-link'));
  });
  after(async () => {
    assert.equal(await daemon?.stop(), 0);
  });

  it('exports the current backup to a file that GNU tar extracts to the workspace tree', async () => {
    const backup = await wsd('backup', 'exp-1');
    assert.equal(backup.code, 0, backup.stderr);
    const file = path.join(tempDir('wsd-export-file-'), 'ex.tar.zst');
    const r = await wsd('export', 'ex', '--owner', 'erin', '-o', file);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^exported ${backup.stdout.trim()} \\(\\d+ bytes\\) to ${file}\\n$`));
    const out = await extract(file);
    assert.equal(firstDifference(await treeManifest(out), await treeManifest(folder, { ignore: notMarker })), undefined);
    assert.deepEqual(readdirSync(path.dirname(file)), ['ex.tar.zst'], 'no temporary file is left beside it');

    // A backup by its key, with --json for scripts.
    const json = await wsd('--json', 'export', 'ex', '--owner', 'erin', '--backup', backup.stdout.trim(), '-o', `${file}.2`);
    assert.equal(json.code, 0, json.stderr);
    const answer = JSON.parse(json.stdout);
    assert.equal(answer.archive, backup.stdout.trim());
    assert.deepEqual(readFileSync(`${file}.2`), readFileSync(file));
  });

  it('exports to stdout for a pipe, and exports a snapshot by its name', async () => {
    const snapshot = (await wsd('snapshot', 'exp-1')).stdout.trim();
    assert.match(snapshot, /^erin\/workspaces\/ex\/snapshots\//);
    const file = path.join(tempDir('wsd-export-stdout-'), 'snap.tar.zst');
    const fd = openSync(file, 'w');
    const child = spawn(process.execPath, [wsdBin(), 'client', '--address', daemon.grpcAddress, 'export', '--snapshot', snapshot], { stdio: ['ignore', fd, 'pipe'] as const });
    closeSync(fd);
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const [code] = await once(child, 'exit');
    assert.equal(code, 0, stderr);
    assert.match(stderr, new RegExp(`^exported ${snapshot} \\(\\d+ bytes\\)\\n$`));
    const out = await extract(file);
    assert.equal(firstDifference(await treeManifest(out), await treeManifest(folder, { ignore: notMarker })), undefined);
  });

  it('answers bad requests with INVALID_ARGUMENT or NOT_FOUND and leaves no file behind', async () => {
    const target = tempDir('wsd-export-bad-');
    const file = path.join(target, 'x.tar.zst');
    let r = await wsd('export', 'nothing-here', '--owner', 'erin', '-o', file);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^NOT_FOUND: workspace nothing-here \(owner erin\) has no backup/);
    r = await wsd('export', 'ex', '--owner', '../erin', '-o', file);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^INVALID_ARGUMENT: .*\(field owner\)$/m);
    r = await wsd('export', 'ex', '--owner', 'erin', '--backup', 'erin/workspaces/other/backups/x.tar.zst', '-o', file);
    assert.match(r.stderr, /^INVALID_ARGUMENT: .*\(field backup\)$/m);
    r = await wsd('export', 'ex', '--owner', 'erin', '--backup', 'erin/workspaces/ex/backups/20200101T000000000Z-00000000.tar.zst', '-o', file);
    assert.match(r.stderr, /^NOT_FOUND: backup .* does not exist/);
    r = await wsd('export', 'ex', '--owner', 'someone-else', '--snapshot', 'erin/workspaces/ex/snapshots/x.tar.zst', '-o', file);
    assert.match(r.stderr, /^INVALID_ARGUMENT: .*\(field owner\)$/m);
    r = await wsd('export', '--snapshot', 'not-a-snapshot', '-o', file);
    assert.match(r.stderr, /^INVALID_ARGUMENT: .*\(field snapshot\)$/m);
    r = await wsd('export', 'ex', '--owner', 'erin', '--backup', 'k', '--snapshot', 's', '-o', file);
    assert.equal(r.code, 2);
    r = await wsd('export', 'ex', '-o', file);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /give <meta-id> and --owner/);
    assert.deepEqual(readdirSync(target), []);
  });

  it('refuses to write the archive to a terminal', async () => {
    const r = await runWsdInTerminal(['client', '--address', daemon.grpcAddress, 'export', 'ex', '--owner', 'erin']);
    assert.equal(r.code, 2);
    assert.match(r.output, /refusing to write a binary archive to a terminal/);
  });

  it('a corrupt stored archive fails the export with DATA_LOSS, and -o leaves no file', async () => {
    const key = (await wsd('backup', 'exp-1')).stdout.trim();
    const stored = findFile(path.join(dir, 'data', 'storage'), path.basename(key));
    const bytes = readFileSync(stored);
    bytes[bytes.length - 100] ^= 0xff; // same size, other content: only the sha256 tells
    writeFileSync(stored, bytes);
    const target = tempDir('wsd-export-corrupt-');
    const r = await wsd('export', 'ex', '--owner', 'erin', '--backup', key, '-o', path.join(target, 'c.tar.zst'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^DATA_LOSS: .*is corrupt/);
    assert.deepEqual(readdirSync(target), []);
  });
});

function findFile(root: string, name: string): string {
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    const full = path.join(root, entry.name);
    if (entry.isDirectory()) {
      const found = findFile(full, name);
      if (found) return found;
    } else if (entry.name === name) return full;
  }
  return existsSync(root) ? '' : assert.fail(`no storage folder ${root}`);
}
