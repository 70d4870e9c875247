import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { WsdClient } from '../../core/api/client.js';
import { listMarkedProcesses, markerFor } from '../../core/process/child-processes.js';
import { lockFileName } from '../../core/process/folder-lock.js';
import { startDaemonProcess, testDaemonConfig, type DaemonProcess } from '../kit/daemon-process.js';
import { until } from '../kit/polling.js';
import { tempDir } from '../kit/temp-dir.js';

/** The exit code (or signal), once the daemon's output is read to the end: 'close', not 'exit'. */
const exitOf = (daemon: DaemonProcess) =>
  new Promise<number | string>((resolve) => daemon.child.once('close', (code, signal) => resolve(code ?? signal!)));

const logged = (daemon: DaemonProcess, msg: string | RegExp) =>
  daemon.logs.some((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg))));

function filesBelow(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

describe('one daemon per data folder', () => {
  it('refuses a second daemon on the same data folder at once, naming the holder, and leaves the first at work', async () => {
    const dir = tempDir('wsd-lock-');
    const first = await startDaemonProcess({ args: ['--config', testDaemonConfig(dir)] });
    const client = new WsdClient({ address: first.grpcAddress });
    try {
      await client.initWorkspace({ id: 'busy', metadata: { owner: 'ann', meta_id: 'busy' }, initializer: { empty: {} } });
      writeFileSync(path.join(dir, 'data', 'workspaces', 'busy', 'work.txt'), 'unsaved work');

      // Same config file: same data folder, new ports (port 0).
      await assert.rejects(startDaemonProcess({ args: ['--config', testDaemonConfig(dir)] }), (error: Error) => {
        assert.match(error.message, /data folder .* is in use by another wsd \(pid (\d+)/);
        assert.match(error.message, new RegExp(`pid ${first.child.pid} `), 'the message names the holder');
        assert.doesNotMatch(error.message, /interrupted|recover/i, 'the second daemon never got as far as recovery');
        return true;
      });

      assert.equal(readFileSync(path.join(dir, 'data', 'workspaces', 'busy', 'work.txt'), 'utf8'), 'unsaved work');
      const described = await client.describeWorkspace('busy');
      assert.equal(described.summary?.state, 'WORKSPACE_STATE_READY', 'the first daemon still owns its workspace');
      assert.ok(!logged(first, /interrupted/), 'the first daemon saw nothing of the second');
    } finally {
      client.close();
      await first.stop();
    }
  });

  it('refuses a second daemon that shares only the working area', async () => {
    const dir = tempDir('wsd-lock-area-');
    const area = path.join(dir, 'shared-area');
    const configA = testDaemonConfig(path.join(dir), `workingArea: ${area}\n`);
    const otherDir = tempDir('wsd-lock-area-b-');
    const configB = testDaemonConfig(otherDir, `workingArea: ${area}\n`);
    const first = await startDaemonProcess({ args: ['--config', configA] });
    try {
      await assert.rejects(startDaemonProcess({ args: ['--config', configB] }), /working area .*shared-area is in use by another wsd/);
    } finally {
      await first.stop();
    }
  });

  it('takes the folders over once the holder is gone, even after kill -9', async () => {
    const dir = tempDir('wsd-lock-kill-');
    const first = await startDaemonProcess({ args: ['--config', testDaemonConfig(dir)] });
    assert.ok(existsSync(path.join(dir, 'data', lockFileName)));
    await first.stop('SIGKILL');
    const second = await startDaemonProcess({ args: ['--config', testDaemonConfig(dir)] });
    assert.equal(await second.stop(), 0);
    const third = await startDaemonProcess({ args: ['--config', testDaemonConfig(dir)] });
    assert.equal(await third.stop(), 0, 'a clean stop releases the folders too');
  });
});

describe('signals during a graceful stop', () => {
  /** A daemon in the middle of a backup long enough to signal it a few times (hundreds of MB of random bytes). */
  async function daemonMidBackup(): Promise<{ daemon: DaemonProcess; backup: Promise<unknown>; dataDir: string; close: () => void }> {
    const dir = tempDir('wsd-signals-');
    const dataDir = path.join(dir, 'data');
    const daemon = await startDaemonProcess({ args: ['--config', testDaemonConfig(dir)] });
    const client = new WsdClient({ address: daemon.grpcAddress });
    try {
      await client.initWorkspace({ id: 'big', metadata: { owner: 'bo', meta_id: 'big' }, initializer: { empty: {} } });
      const folder = path.join(dataDir, 'workspaces', 'big');
      // Random bytes do not compress: the archive costs real time to write, whatever the machine.
      for (let i = 0; i < 12; i++) writeFileSync(path.join(folder, `blob-${i}.bin`), randomBytes(32 * 1024 * 1024));
      const backup = client.backupWorkspace('big').catch((error: unknown) => error);
      // The archive is being written when a temp file of the put exists in the storage folder.
      await until(() => filesBelow(path.join(dataDir, 'storage')).some((f) => path.basename(f).startsWith('.~')), 'the backup to start writing', 60_000);
      return { daemon, backup, dataDir, close: () => client.close() };
    } catch (error) {
      // A setup that fails must not leave its daemon behind.
      client.close();
      await daemon.stop('SIGKILL');
      throw error;
    }
  }

  it('a second signal says "already stopping" and the stop completes: the backup commits, exit 0', async () => {
    const { daemon, backup, dataDir, close } = await daemonMidBackup();
    try {
      const exit = exitOf(daemon);
      daemon.child.kill('SIGINT');
      await until(() => logged(daemon, 'stopping'), 'the first signal to start the stop');
      daemon.child.kill('SIGINT');
      await until(() => logged(daemon, /^already stopping/), 'the second signal to be acknowledged', 30_000);
      assert.equal(await exit, 0, `exit code; stderr: ${daemon.stderr()}`);
      assert.ok(logged(daemon, 'stopped'));
      await backup;
      const stored = filesBelow(path.join(dataDir, 'storage'));
      assert.ok(stored.some((f) => f.endsWith('.tar.zst') || f.endsWith('.tree.zst')), 'the backup archive was committed');
      assert.ok(stored.some((f) => path.basename(f) === 'latest.json'), 'and the latest pointer moved to it');
      assert.ok(!stored.some((f) => path.basename(f).startsWith('.~')), 'no half-written object is left');
    } finally {
      close();
      await daemon.stop('SIGKILL');
    }
  });

  it('a third signal exits at once with 130', async () => {
    const { daemon, dataDir, close } = await daemonMidBackup();
    try {
      const exit = exitOf(daemon);
      daemon.child.kill('SIGINT');
      await until(() => logged(daemon, 'stopping'), 'the first signal');
      daemon.child.kill('SIGINT');
      await until(() => logged(daemon, /^already stopping/), 'the second signal', 30_000);
      daemon.child.kill('SIGINT');
      assert.equal(await exit, 130);
      assert.ok(logged(daemon, /forced exit/));
      // The archive's tar and zstd run in process groups of their own: a forced exit ends them too, at once.
      await until(async () => (await listMarkedProcesses(markerFor(dataDir))).length === 0, 'the backup children to be gone', 3_000);
    } finally {
      close();
      await daemon.stop('SIGKILL');
    }
  });
});
