/**
 * The node disk guard through the real daemon on a real, small file system: a 64 MiB tmpfs is the working area,
 * `workspaces.minFree` is 32 MiB. A workspace fills the disk; the next InitWorkspace is refused with
 * RESOURCE_EXHAUSTED naming free and required bytes and the setting, readiness fails (disk-space, critical), the
 * crossing is logged and counted; once the workspace deletes its data, inits are accepted again by themselves.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import { WsdClient, errorField } from '../../core/api/client.js';
import { startDaemonProcess, testDaemonConfig } from '../kit/daemon-process.js';
import { until } from '../kit/polling.js';
import { tempDir } from '../kit/temp-dir.js';

const MiB = 1024 * 1024;
const get = async (address: string, route: string) => {
  const res = await fetch(`http://${address}${route}`);
  return { status: res.status, text: await res.text() };
};
const mounted: string[] = [];
after(() => {
  for (const dir of mounted) execFileSync('umount', ['-l', dir]);
});

describe('disk guard', () => {
  it('refuses InitWorkspace below workspaces.minFree, turns readiness, logs and counts, and recovers by itself once space is freed', async () => {
    // Needs root for the tmpfs; fails rather than skips (CI runs as root).
    assert.equal(process.getuid?.(), 0, 'this test mounts a tmpfs as the working area: run it as root');
    const dir = tempDir('wsd-disk-guard-');
    const workingArea = path.join(dir, 'area');
    mkdirSync(workingArea);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', workingArea]);
    mounted.push(workingArea);
    const config = testDaemonConfig(
      dir,
      `workingArea: ${workingArea}\nworkspaces:\n  minFree: 32MiB\nhealth:\n  working-area: {}\n  disk-space: { warnBelow: 32MiB, critical: true }\n`,
    );
    const daemon = await startDaemonProcess({ args: ['--config', config] });
    const client = new WsdClient({ address: daemon.grpcAddress });
    const init = (id: string) => client.initWorkspace({ id, metadata: { owner: 'o', meta_id: `m-${id}` }, initializer: { empty: {} } });
    try {
      assert.equal((await get(daemon.httpAddress, '/readyz')).status, 200);
      await init('filler');
      // A workspace fills the node's disk (quota none: nothing stops it but the disk).
      writeFileSync(path.join(workingArea, 'filler', 'big.bin'), Buffer.alloc(40 * MiB, 1));

      const refused = await init('second').then(() => undefined, (error: ServiceError) => error);
      assert.ok(refused, 'InitWorkspace was accepted on a full node');
      assert.equal(refused.code, status.RESOURCE_EXHAUSTED, refused.details);
      assert.match(refused.details, new RegExp(`the working area ${workingArea} has \\d+ bytes \\([\\d.]+ MiB\\) free; new workspaces need at least ${32 * MiB} bytes \\(32\\.0 MiB, workspaces\\.minFree\\)`));
      assert.equal(errorField(refused), 'workspaces.minFree');
      assert.equal(await client.isWorkspaceExists('second'), false, 'nothing was created');

      const ready = await get(daemon.httpAddress, '/readyz');
      assert.equal(ready.status, 503);
      const diskCheck = (JSON.parse(ready.text) as { checks: Array<{ name: string; status: string; reason?: string }> }).checks.find((c) => c.name === 'disk-space');
      assert.equal(diskCheck?.status, 'failing');
      assert.match(diskCheck!.reason!, /free on .* below 32\.0 MiB/);
      const metrics = (await get(daemon.httpAddress, '/metrics')).text;
      assert.match(metrics, new RegExp(`^wsd_working_area_min_free_bytes ${32 * MiB}$`, 'm'));
      assert.match(metrics, /^wsd_working_area_low 1$/m);
      assert.match(metrics, /^wsd_disk_guard_refusals_total 1$/m);
      assert.ok(daemon.logs.some((l) => l.level === 'warn' && /working area free space is below workspaces\.minFree/.test(String(l.msg)) && l.minFreeBytes === 32 * MiB));

      // Space is freed: the next init is accepted, with no restart or operator action.
      rmSync(path.join(workingArea, 'filler', 'big.bin'));
      await init('second');
      assert.equal(await client.isWorkspaceExists('second'), true);
      assert.ok(daemon.logs.some((l) => l.level === 'info' && /back above workspaces\.minFree/.test(String(l.msg))));
      await until(async () => (await get(daemon.httpAddress, '/readyz')).status === 200, 'ready again');
      assert.match((await get(daemon.httpAddress, '/metrics')).text, /^wsd_working_area_low 0$/m);
      for (const id of ['filler', 'second']) await client.disposeWorkspace(id);
    } finally {
      client.close();
      assert.equal(await daemon.stop(), 0);
    }
  });
});
