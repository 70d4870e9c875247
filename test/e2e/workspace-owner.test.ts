import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { WsdClient } from '../../core/api/client.js';
import { startDaemonProcess, testDaemonConfig } from '../kit/daemon-process.js';
import { makeRepos, startGitHttpServer } from '../kit/git-fixtures.js';
import { tempDir } from '../kit/temp-dir.js';

const nobody = 65534;

/** Every entry below `dir` (not following symlinks) with its owner. */
function owners(dir: string): Array<[string, number, number]> {
  const out: Array<[string, number, number]> = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = path.join(d, name);
      const info = lstatSync(full);
      out.push([path.relative(dir, full), info.uid, info.gid]);
      if (info.isDirectory()) walk(full);
    }
  };
  walk(dir);
  return out;
}

describe('content owned by the configured workspace user', { skip: process.getuid?.() !== 0 ? 'needs root (CI runs as root)' : false }, () => {
  it('clones, restores and writes the ready marker as workspaces.uid/gid', async () => {
    const repos = makeRepos(tempDir('wsd-owner-repos-'));
    const http = await startGitHttpServer(repos.root);
    // Under /tmp (traversable by everyone), with the data folders made 0755 whatever the umask: git and tar run as
    // the workspace user and must reach the workspace folder.
    const dir = tempDir('wsd-owner-', { base: '/tmp' });
    chmodSync(dir, 0o755);
    mkdirSync(path.join(dir, 'data', 'workspaces'), { recursive: true, mode: 0o755 });
    chmodSync(path.join(dir, 'data'), 0o755);
    chmodSync(path.join(dir, 'data', 'workspaces'), 0o755);
    const daemon = await startDaemonProcess({ args: ['--config', testDaemonConfig(dir, `workspaces:\n  uid: ${nobody}\n  gid: ${nobody}\n`)] });
    const client = new WsdClient({ address: daemon.grpcAddress });
    try {
      const folder = (id: string) => path.join(dir, 'data', 'workspaces', id);
      await client.initWorkspace({ id: 'o1', metadata: { owner: 'gus', meta_id: 'own' }, initializer: { git: { remote_uri: http.url('project'), checkout_location: 'repo' } } });
      const cloned = owners(folder('o1'));
      assert.ok(cloned.length > 10);
      assert.deepEqual(cloned.filter(([, uid, gid]) => uid !== nobody || gid !== nobody), [], 'everything belongs to the workspace user');
      assert.equal(lstatSync(folder('o1')).uid, nobody);

      writeFileSync(path.join(folder('o1'), 'root-made.txt'), 'written by root\n');
      await client.disposeWorkspace('o1', { backup: true });
      await client.initWorkspace({ id: 'o2', metadata: { owner: 'gus', meta_id: 'own' }, initializer: { backup: { checkout_location: 'repo' } } });
      assert.deepEqual(owners(folder('o2')).filter(([, uid, gid]) => uid !== nobody || gid !== nobody), [], 'restored content belongs to the workspace user');
      const status = await client.disposeWorkspace('o2');
      assert.equal(status?.branch, 'main', 'git status reads the checkout as the workspace user');
    } finally {
      client.close();
      await daemon.stop();
      await http.close();
    }
  });
});
