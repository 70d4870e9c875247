/**
 * quota/loop through the real daemon, real loop devices and real mounts (root needed: the test fails without it).
 * InitWorkspace with storage_quota_bytes gives a workspace its own file system; writing past the limit fails inside
 * it while its neighbour and the daemon go on; a backup of the full workspace succeeds and restores; after kill -9
 * and a "reboot" (every workspace unmounted) the next start mounts them again and sweeps what a crash left; dispose
 * leaves no mount, loop device or image.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { WsdClient } from '../../core/api/client.js';
import { readMountTable } from '../../core/fs/mount-table.js';
import { attachedLoopDevices } from '../../plugins/quota/loop/loop-devices.js';
import { startDaemonProcess, testDaemonConfig, wsdBin, type DaemonProcess } from '../kit/daemon-process.js';
import { tempDir } from '../kit/temp-dir.js';

const MiB = 1024 * 1024;
const dir = tempDir('wsd-loop-e2e-');
const imagesDir = path.join(realpathSync(dir), 'data', 'quota-images');
const workingArea = path.join(realpathSync(dir), 'data', 'workspaces');

const loopDevicesOfImages = async () => (await attachedLoopDevices()).filter((d) => d.backingFile.startsWith(`${imagesDir}/`));
async function loopMounts(): Promise<string[]> {
  const ids = new Set((await loopDevicesOfImages()).map((d) => d.device));
  return (await readMountTable()).filter((m) => ids.has(m.device)).map((m) => m.mountPoint).sort();
}

/** Writes until the file system refuses (or `maxBytes` are written); the error, if any. */
async function fill(file: string, maxBytes: number): Promise<{ written: number; error?: NodeJS.ErrnoException }> {
  const handle = await open(file, 'w');
  const chunk = Buffer.alloc(MiB, 0x42);
  let written = 0;
  try {
    while (written < maxBytes) written += (await handle.write(chunk)).bytesWritten;
    await handle.sync();
    return { written };
  } catch (error) {
    return { written, error: error as NodeJS.ErrnoException };
  } finally {
    await handle.close().catch(() => {});
  }
}

after(async () => {
  // Whatever a failed run left: no mount, no loop device stays on the host.
  for (const point of (await loopMounts()).reverse()) execFileSync('umount', ['-l', point]);
  for (const device of await loopDevicesOfImages()) execFileSync('losetup', ['--detach', device.path]);
});

describe('quota/loop through the daemon', () => {
  it('is skipped where loop devices cannot be used (not root), and wsd refuses to start, saying why', (t) => {
    const readable = spawnSync(process.execPath, ['-e', `require('node:fs').accessSync(${JSON.stringify(wsdBin())})`], { uid: 65534, gid: 65534, encoding: 'utf8' });
    if (readable.status !== 0) return t.skip(`user nobody cannot run wsd from this checkout (${readable.stderr.trim().split('\n')[0] ?? readable.error?.message})`);
    const home = tempDir('wsd-loop-unprivileged-');
    chmodSync(home, 0o777);
    const config = testDaemonConfig(home, 'quota:\n  plugin: loop\n');
    chmodSync(config, 0o644);
    // The daemon as user nobody: the plugin's own check, not a test double, decides.
    const run = spawnSync(process.execPath, [wsdBin(), 'run', '--config', config], { cwd: home, uid: 65534, gid: 65534, encoding: 'utf8', timeout: 60_000 });
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /quota\/loop was skipped \(attaching loop devices and mounting needs root \(run wsd as root, privileged in a container\)\); wsd needs a working quota plugin/);
  });

  it('enforces per workspace, backs up a full workspace, survives kill -9 and a reboot, and disposes without leftovers', { timeout: 300_000 }, async () => {
    assert.equal(process.getuid?.(), 0, 'quota/loop needs root (loop devices, mounts): run this test as root');
    const config = testDaemonConfig(
      dir,
      'quota:\n  plugin: loop\n  loop:\n    defaultSize: 32MiB\nhealth:\n  working-area: {}\n  quota: {}\nbackup:\n  period: 0\n',
    );
    let daemon: DaemonProcess = await startDaemonProcess({ args: ['--config', config] });
    let client = new WsdClient({ address: daemon.grpcAddress });
    const init = (id: string, quota: number, initializer: object = { empty: {} }, metaId = `m-${id}`) =>
      client.initWorkspace({ id, metadata: { owner: 'o', meta_id: metaId }, initializer, storage_quota_bytes: quota });
    try {
      const ready = await fetch(`http://${daemon.httpAddress}/readyz`).then((r) => r.json() as Promise<{ checks: Array<{ name: string; status: string }> }>);
      assert.deepEqual(ready.checks.find((c) => c.name === 'quota'), { name: 'quota', critical: true, status: 'ok' });

      await init('small', 64 * MiB);
      await init('big', 256 * MiB);
      await init('default', 0);
      assert.deepEqual(await loopMounts(), ['big', 'default', 'small'].map((id) => path.join(workingArea, id)));
      assert.deepEqual(readdirSync(imagesDir).sort(), ['big.img', 'default.img', 'small.img']);
      assert.equal(Number((await client.describeWorkspace('default')).quota_limit_bytes), 32 * MiB, 'storage_quota_bytes 0 gets the configured default size');

      // 100 MiB do not fit in 64 MiB: ENOSPC inside the workspace; the neighbour and the daemon are unaffected.
      const small = await fill(path.join(workingArea, 'small', 'data.bin'), 100 * MiB);
      assert.equal(small.error?.code, 'ENOSPC', `ENOSPC after ${small.written} bytes: ${String(small.error)}`);
      const big = await fill(path.join(workingArea, 'big', 'data.bin'), 100 * MiB);
      assert.equal(big.error, undefined, String(big.error));
      assert.equal(await client.isWorkspaceExists('small'), true);
      const detail = await client.describeWorkspace('small');
      assert.equal(Number(detail.quota_limit_bytes), 64 * MiB);
      assert.ok(Number(detail.quota_used_bytes) > 63 * MiB, `describe shows the full workspace full: ${detail.quota_used_bytes}`);
      // The metrics sum limits and use over the workspaces on disk: 64 + 256 + 32 (the default size) MiB.
      const metrics = await fetch(`http://${daemon.httpAddress}/metrics`).then((r) => r.text());
      const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
      assert.equal(gauge('wsd_quota_limit_bytes'), 352 * MiB, metrics);
      assert.ok(gauge('wsd_quota_used_bytes') > 163 * MiB, `used: ${gauge('wsd_quota_used_bytes')}`);

      // A backup of the full workspace succeeds: nothing it does writes into the workspace.
      const backup = await client.backupWorkspace('small');
      assert.ok(backup);
      assert.equal((await client.listBackups({ owner: 'o', meta_id: 'm-small' })).backups.length, 1);

      // kill -9, then what a reboot does: every file system unmounted (mount's autoclear detaches the loop devices).
      // A crash in the middle of a provision left an image nobody names.
      assert.equal(await daemon.stop('SIGKILL'), 'SIGKILL');
      for (const point of await loopMounts()) execFileSync('umount', [point]);
      assert.deepEqual(await loopDevicesOfImages(), []);
      writeFileSync(path.join(imagesDir, 'crashed.img'), '');
      client.close();

      daemon = await startDaemonProcess({ args: ['--config', config] });
      client = new WsdClient({ address: daemon.grpcAddress });
      assert.deepEqual(await loopMounts(), ['big', 'default', 'small'].map((id) => path.join(workingArea, id)), 'every workspace is mounted again');
      assert.equal(statSync(path.join(workingArea, 'small', 'data.bin')).size, small.written, 'content intact');
      assert.equal(existsSync(path.join(imagesDir, 'crashed.img')), false, 'the leftover image is swept');
      assert.ok(daemon.logs.some((l) => /removed a loop image no workspace names/.test(String(l.msg)) && String(l.image).endsWith('crashed.img')));
      assert.equal((await fill(path.join(workingArea, 'small', 'more.bin'), 16 * MiB)).error?.code, 'ENOSPC', 'enforced again after the restart');

      // Restoring the full workspace's backup into a workspace of the same size: the content fits.
      await init('restored', 64 * MiB, { backup: {} }, 'm-small').catch((error: Error) => assert.fail(`restore of the full workspace: ${error.message}`));
      assert.equal(statSync(path.join(workingArea, 'restored', 'data.bin')).size, small.written);

      for (const id of ['small', 'big', 'default', 'restored']) await client.disposeWorkspace(id, { backup: id === 'small' });
      assert.deepEqual(await loopMounts(), [], 'no mount left');
      assert.deepEqual(await loopDevicesOfImages(), [], 'no loop device left');
      assert.deepEqual(readdirSync(imagesDir), [], 'no image left');
      assert.deepEqual(readdirSync(workingArea).filter((f) => !f.startsWith('.wsd.lock')), [], 'no folder left');
    } finally {
      client.close();
      await daemon.stop();
    }
  });
});
