import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { WsdClient } from '../../core/api/client.js';
import { startDaemonProcess, testDaemonConfig, type DaemonProcess } from '../kit/daemon-process.js';

const MiB = 1024 * 1024;

export interface DaemonQuotaScenario {
  /** The daemon's folder: config and `data/` (the working area is `data/workspaces`) go here. */
  dir: string;
  /** The `quota:` section of the config. */
  quotaConfig: string;
  /** What a reboot does to this strategy's resources, run between kill -9 and the next start. */
  reboot(workingArea: string): Promise<void>;
  /** Asserts that the strategy holds nothing any more (no project id, no volume, no mount). */
  assertNothingLeft(workingArea: string): Promise<void>;
}

/**
 * Writes until the file system refuses (or `maxBytes` are written); the error, if any. A full XFS project refuses
 * even to create the file (ENOSPC from open).
 */
export async function fill(file: string, maxBytes: number): Promise<{ written: number; error?: NodeJS.ErrnoException }> {
  const handle = await open(file, 'w').catch((error: NodeJS.ErrnoException) => error);
  if (!('write' in handle)) return { written: 0, error: handle };
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

/**
 * A quota strategy through the real daemon (the guest's kernel, the daemon's own process): InitWorkspace with
 * storage_quota_bytes limits the workspace (ENOSPC past it, the neighbour and the daemon unaffected), describe shows
 * the use, a backup of the full workspace succeeds and restores into a workspace of the same limit, kill -9 and a
 * reboot later the next start re-attaches and enforces again, and dispose leaves nothing behind.
 */
export async function runDaemonQuotaScenario(scenario: DaemonQuotaScenario): Promise<void> {
  const config = testDaemonConfig(scenario.dir, `${scenario.quotaConfig}health:\n  working-area: {}\n  quota: {}\nbackup:\n  period: 0\n`);
  const workingArea = path.join(scenario.dir, 'data', 'workspaces');
  let daemon: DaemonProcess = await startDaemonProcess({ args: ['--config', config] });
  let client = new WsdClient({ address: daemon.grpcAddress });
  const init = (id: string, quota: number, initializer: object = { empty: {} }, metaId = `m-${id}`) =>
    client.initWorkspace({ id, metadata: { owner: 'o', meta_id: metaId }, initializer, storage_quota_bytes: quota });
  try {
    const ready = (await fetch(`http://${daemon.httpAddress}/readyz`).then((r) => r.json())) as { checks: Array<{ name: string; status: string }> };
    assert.equal(ready.checks.find((c) => c.name === 'quota')?.status, 'ok', `the quota health check: ${JSON.stringify(ready.checks)}`);

    await init('small', 64 * MiB);
    await init('big', 400 * MiB);
    const small = await fill(path.join(workingArea, 'small', 'data.bin'), 100 * MiB);
    assert.equal(small.error?.code, 'ENOSPC', `ENOSPC after ${small.written} bytes: ${String(small.error)}`);
    assert.equal((await fill(path.join(workingArea, 'big', 'data.bin'), 100 * MiB)).error, undefined, 'the neighbour writes 100 MiB');
    assert.equal(await client.isWorkspaceExists('small'), true, 'the daemon serves on');
    const detail = await client.describeWorkspace('small');
    assert.ok(Number(detail.quota_limit_bytes) >= 64 * MiB, `describe shows the limit: ${detail.quota_limit_bytes}`);
    assert.ok(Number(detail.quota_used_bytes) > 60 * MiB, `describe shows the full workspace full: ${detail.quota_used_bytes}`);

    // A backup of the full workspace succeeds: nothing it does writes into the workspace.
    await client.backupWorkspace('small');
    assert.equal((await client.listBackups({ owner: 'o', meta_id: 'm-small' })).backups.length, 1);

    assert.equal(await daemon.stop('SIGKILL'), 'SIGKILL');
    client.close();
    await scenario.reboot(workingArea);
    daemon = await startDaemonProcess({ args: ['--config', config] });
    client = new WsdClient({ address: daemon.grpcAddress });
    assert.equal(statSync(path.join(workingArea, 'small', 'data.bin')).size, small.written, 'content intact after kill -9 and a reboot');
    assert.equal((await fill(path.join(workingArea, 'small', 'more.bin'), 16 * MiB)).error?.code, 'ENOSPC', 'enforced again after the restart');

    // The full workspace's backup restores into a workspace of the same limit.
    await init('restored', 64 * MiB, { backup: {} }, 'm-small').catch((error: Error) => assert.fail(`restore of the full workspace: ${error.message}`));
    assert.equal(statSync(path.join(workingArea, 'restored', 'data.bin')).size, small.written);
    assert.equal((await fill(path.join(workingArea, 'restored', 'more.bin'), 16 * MiB)).error?.code, 'ENOSPC', 'the restored workspace is limited');

    for (const id of ['small', 'big', 'restored']) await client.disposeWorkspace(id, { backup: false });
    assert.deepEqual(existsSync(workingArea) ? readdirSync(workingArea).filter((f) => !f.startsWith('.wsd')) : [], [], 'no folder left');
    await scenario.assertNothingLeft(workingArea);
  } finally {
    client.close();
    await daemon.stop();
  }
}
