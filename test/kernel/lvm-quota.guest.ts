/**
 * The lvm quota strategy on real LVM thin provisioning. Runs INSIDE the test guest (test/kit/guest-vm.ts), booted by
 * lvm-quota.test.ts beside it: this host's kernel has no device-mapper. The guest's /dev/vda becomes volume group
 * wsdvg with a thin pool that fails writes when full; the guest runs no udev, so every lvm command gets
 * `activation{udev_sync=0 udev_rules=0}` (the strategy's lvmConfig setting, as in a udev-less container).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { isSkip, skip as skipPlugin, type QuotaHandle } from '../../core/plugin-api.js';
import { silentLogger } from '../../core/observability/logger.js';
import { describeQuotaStrategyConformance } from '../conformance/quota-strategy.js';
import { runDaemonQuotaScenario } from './daemon-quota-scenario.js';
import { lvmQuotaPlugin } from '../../plugins/quota/lvm/plugin.js';
import { LvmQuotaStrategy, type LvmQuotaOptions } from '../../plugins/quota/lvm/lvm-quota-strategy.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const lvmConfig = 'activation{udev_sync=0 udev_rules=0 monitoring=0}';

if (!process.env.WSD_GUEST_RESULTS) {
  throw new Error('this file runs inside the QEMU test guest; run lvm-quota.test.js, which boots it (node scripts/test.mjs kernel/lvm-quota)');
}

async function lvm(...args: string[]): Promise<string> {
  const [command, ...rest] = args;
  return (await run('lvm', [command!, '--config', lvmConfig, ...rest])).stdout;
}

await lvm('pvcreate', '-q', '/dev/vda');
await lvm('vgcreate', '-q', 'wsdvg', '/dev/vda');
await lvm('lvcreate', '-q', '--type', 'thin-pool', '-L', '1200m', '-n', 'pool', 'wsdvg');
await lvm('lvchange', '-q', '--errorwhenfull', 'y', 'wsdvg/pool');
// For the pool-full case: a small pool whose metadata use stays far below its data use.
await lvm('lvcreate', '-q', '--type', 'thin-pool', '-L', '256m', '--poolmetadatasize', '32m', '-n', 'tight', 'wsdvg');
await lvm('lvchange', '-q', '--errorwhenfull', 'y', 'wsdvg/tight');
// For the start checks: a pool that queues when full, and a volume that is no pool.
await lvm('lvcreate', '-q', '--type', 'thin-pool', '-L', '64m', '-n', 'queuing', 'wsdvg');
await lvm('lvcreate', '-q', '-L', '16m', '-n', 'plain', 'wsdvg');

const areas = '/run/wsd-lvm-areas';
mkdirSync(areas, { recursive: true });

/** A fresh working area (plain folders: the volumes are mounted in them), for one test. */
function workingArea(): string {
  return mkdtempSync(path.join(areas, 'area-'));
}

const config = { volumeGroup: 'wsdvg', thinPool: 'pool', fsType: 'ext4' as const, defaultSize: 64 * MiB, mountOptions: 'discard', maxPoolPercent: 90, lvmConfig, commandTimeout: 120_000, healthInterval: 0 };

function strategy(options: Partial<LvmQuotaOptions> & { workingArea: string }): LvmQuotaStrategy {
  return new LvmQuotaStrategy({
    volumeGroup: 'wsdvg',
    thinPool: 'pool',
    fsType: 'ext4',
    defaultSizeBytes: 64 * MiB,
    mountOptions: 'discard',
    maxPoolPercent: 90,
    lvmConfig,
    commandTimeoutMs: 120_000,
    healthIntervalMs: 0,
    log: silentLogger,
    ...options,
  });
}

interface Lv {
  lv_name: string;
  lv_tags: string;
  data_percent: string;
  metadata_percent: string;
}

async function volumes(): Promise<Lv[]> {
  const report = JSON.parse(await lvm('lvs', '--reportformat', 'json', '-o', 'lv_name,lv_tags,data_percent,metadata_percent', 'wsdvg')) as { report: Array<{ lv: Lv[] }> };
  return report.report[0]!.lv;
}

/** A pool's fullness as the strategy judges it: the larger of its data and metadata use, in percent. */
async function poolPercent(pool: string): Promise<number> {
  const volume = (await volumes()).find((v) => v.lv_name === pool)!;
  return Math.max(Number(volume.data_percent), Number(volume.metadata_percent));
}

function mounted(dir: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((line) => line.split(' ')[4] === dir);
}

const volumeOf = (handle: QuotaHandle) => handle.data.volume as string;

/** Writes `bytes` in 1 MiB chunks and fsyncs; resolves with the error that stopped it, if any. */
async function write(file: string, bytes: number): Promise<NodeJS.ErrnoException | undefined> {
  const handle = await open(file, 'w');
  try {
    const chunk = Buffer.alloc(MiB, 0x5a);
    for (let written = 0; written < bytes; written += chunk.length) await handle.write(chunk, 0, Math.min(chunk.length, bytes - written));
    await handle.sync();
    return undefined;
  } catch (error) {
    return error as NodeJS.ErrnoException;
  } finally {
    await handle.close().catch(() => {});
  }
}

const conformanceArea = workingArea();
describeQuotaStrategyConformance('lvm', {
  create: () => strategy({ workingArea: conformanceArea }),
  workspaceRoot: () => mkdtempSync(path.join(conformanceArea, 'case-')),
});

describe('lvm quota strategy on LVM thin volumes', () => {
  it('a workspace with a 64 MiB quota cannot write 100 MiB (ENOSPC), its neighbour can still write; release leaves no volume or mount', async () => {
    const area = workingArea();
    const lv = strategy({ workingArea: area });
    const full = await lv.provision({ workspaceId: 'full', dir: path.join(area, 'full'), limitBytes: 64 * MiB });
    const neighbour = await lv.provision({ workspaceId: 'neighbour', dir: path.join(area, 'neighbour'), limitBytes: 64 * MiB });
    const error = await write(path.join(full.dir, 'big.bin'), 100 * MiB);
    assert.equal(error?.code, 'ENOSPC', `expected ENOSPC, got ${String(error)}`);
    const usage = await lv.usage({ handle: full });
    assert.ok(usage.usedBytes! >= usage.limitBytes! - MiB, `a full volume shows used ${usage.usedBytes} ≈ limit ${usage.limitBytes}`);
    assert.equal(await write(path.join(neighbour.dir, 'some.bin'), 40 * MiB), undefined, 'the neighbour writes 40 MiB');
    for (const handle of [full, neighbour]) await lv.release({ handle });
    const names = (await volumes()).map((v) => v.lv_name);
    for (const handle of [full, neighbour]) {
      assert.ok(!names.includes(volumeOf(handle)), `${volumeOf(handle)} is removed`);
      assert.equal(mounted(handle.dir), false);
      assert.equal(existsSync(handle.dir), false);
    }
  });

  it('ten concurrent provisions get ten distinct volumes, tagged with their workspace', async () => {
    const area = workingArea();
    const lv = strategy({ workingArea: area });
    const handles = await Promise.all(Array.from({ length: 10 }, (_, i) => lv.provision({ workspaceId: `ws-${i}`, dir: path.join(area, `ws-${i}`), limitBytes: 16 * MiB })));
    assert.equal(new Set(handles.map(volumeOf)).size, 10);
    const listed = await volumes();
    for (const handle of handles) {
      assert.match(listed.find((v) => v.lv_name === volumeOf(handle))?.lv_tags ?? '', new RegExp(`wsd-workspace=${handle.workspaceId}(,|$)`));
      assert.ok(mounted(handle.dir));
    }
    await Promise.all(handles.map((handle) => lv.release({ handle })));
    const left = (await volumes()).map((v) => v.lv_name);
    assert.deepEqual(handles.map(volumeOf).filter((name) => left.includes(name)), []);
  });

  it('after a reboot recover activates and mounts the volume again, and it enforces again; leftovers are swept, but not those core keeps apart', async () => {
    const area = workingArea();
    const before = strategy({ workingArea: area });
    const kept = await before.provision({ workspaceId: 'kept', dir: path.join(area, 'kept'), limitBytes: 16 * MiB });
    const orphan = await before.provision({ workspaceId: 'orphan', dir: path.join(area, 'orphan'), limitBytes: 16 * MiB });
    const apart = await before.provision({ workspaceId: 'apart', dir: path.join(area, 'apart'), limitBytes: 16 * MiB });
    writeFileSync(path.join(kept.dir, 'work.txt'), 'kept across the reboot');
    // A reboot: nothing mounted, thin volumes inactive. `orphan` is a volume whose handle was never persisted,
    // `apart` one whose state file core cannot read (it passes the id in leaveAlone).
    for (const handle of [kept, orphan, apart]) {
      await run('umount', [handle.dir]);
      await lvm('lvchange', '-q', '--activate', 'n', `wsdvg/${volumeOf(handle)}`);
    }
    const after = strategy({ workingArea: area });
    const { failed } = await after.recover({ handles: [JSON.parse(JSON.stringify(kept)) as QuotaHandle], leaveAlone: ['apart'] });
    assert.deepEqual(failed, []);
    assert.ok(mounted(kept.dir), 'mounted again');
    assert.equal(readFileSync(path.join(kept.dir, 'work.txt'), 'utf8'), 'kept across the reboot');
    assert.equal(await write(path.join(kept.dir, 'big.bin'), 40 * MiB).then((e) => e?.code), 'ENOSPC', 'the limit holds again');
    const names = (await volumes()).map((v) => v.lv_name);
    assert.ok(!names.includes(volumeOf(orphan)), 'the volume no handle names was removed');
    assert.ok(names.includes(volumeOf(apart)), 'the volume of a workspace core keeps apart was left alone');
    await after.release({ handle: kept });
    await lvm('lvremove', '-q', '-y', `wsdvg/${volumeOf(apart)}`);
  });

  it('a nearly full pool refuses new workspaces with RESOURCE_EXHAUSTED and reports degraded health; deleting gives space back (discard)', async () => {
    const area = workingArea();
    // The threshold sits above what an empty pool shows (its metadata alone is some 10 %), below what 80 MiB add.
    const maxPoolPercent = (await poolPercent('tight')) + 10;
    const lv = strategy({ workingArea: area, thinPool: 'tight', maxPoolPercent });
    const handle = await lv.provision({ workspaceId: 'filler', dir: path.join(area, 'filler'), limitBytes: 128 * MiB });
    const empty = await poolPercent('tight');
    assert.equal(await write(path.join(handle.dir, 'fill.bin'), 80 * MiB), undefined);
    const filled = await poolPercent('tight');
    assert.ok(filled >= maxPoolPercent, `pool at ${filled} % after writing 80 MiB of 256`);
    await assert.rejects(lv.provision({ workspaceId: 'late', dir: path.join(area, 'late'), limitBytes: 16 * MiB }), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'RESOURCE_EXHAUSTED');
      assert.match(error.message, /thin pool wsdvg\/tight is .* % full/);
      return true;
    });
    assert.equal(existsSync(path.join(area, 'late')), false, 'no folder left behind');
    assert.equal((await lv.checkHealth()).status, 'degraded');
    await rm(path.join(handle.dir, 'fill.bin'));
    await run('sync');
    const after = await poolPercent('tight');
    assert.ok(after < filled, `deleting returned blocks to the pool (${empty} → ${filled} → ${after} %)`);
    await lv.release({ handle });
  });

  it('formats xfs volumes when configured (at least 300 MiB)', async () => {
    const area = workingArea();
    const lv = strategy({ workingArea: area, fsType: 'xfs' });
    await assert.rejects(lv.provision({ workspaceId: 'small', dir: path.join(area, 'small'), limitBytes: 64 * MiB }), /at least/);
    const handle = await lv.provision({ workspaceId: 'x', dir: path.join(area, 'x'), limitBytes: 304 * MiB });
    assert.equal(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === handle.dir)?.includes(' - xfs '), true);
    assert.equal(await write(path.join(handle.dir, 'big.bin'), 310 * MiB).then((e) => e?.code), 'ENOSPC');
    await lv.release({ handle });
  });

  it('is skipped, saying why, without the volume group, the thin pool, or a pool that fails writes when full', async () => {
    const create = async (overrides: Partial<typeof config>) => {
      const result = await lvmQuotaPlugin.create({
        config: { ...config, ...overrides },
        services: {},
        log: silentLogger,
        paths: { dataDir: '/var/lib/wsd', workingArea: workingArea(), stateDir: '/var/lib/wsd/state' },
        resolvePath: (p: string) => p,
        skip: skipPlugin,
      });
      return isSkip(result) ? result.reason : undefined;
    };
    assert.match((await create({ volumeGroup: 'nosuchvg' })) ?? '', /volume group nosuchvg does not exist/);
    assert.match((await create({ thinPool: 'nosuchpool' })) ?? '', /wsdvg\/nosuchpool is missing, not a thin pool/);
    assert.match((await create({ thinPool: 'plain' })) ?? '', /wsdvg\/plain is a linear volume, not a thin pool/);
    assert.match((await create({ thinPool: 'queuing' })) ?? '', /queues writes when it is full .*lvchange --errorwhenfull y wsdvg\/queuing/);
    assert.equal(await create({}), undefined, 'the configured pool is usable');
  });
});

describe('quota/lvm through the daemon', () => {
  it('enforces per workspace, backs up a full workspace, survives kill -9 and a reboot, and disposes without leftovers', { timeout: 600_000 }, async () => {
    const dir = mkdtempSync(path.join(areas, 'daemon-'));
    const ours = async () => (await volumes()).filter((v) => v.lv_tags.split(',').includes('wsd'));
    await runDaemonQuotaScenario({
      dir,
      quotaConfig: `quota:\n  plugin: lvm\n  lvm:\n    volumeGroup: wsdvg\n    thinPool: pool\n    lvmConfig: '${lvmConfig}'\n`,
      async reboot(workingArea) {
        // Nothing mounted, thin volumes inactive.
        for (const id of readdirSync(workingArea)) if (mounted(path.join(workingArea, id))) await run('umount', [path.join(workingArea, id)]);
        for (const volume of await ours()) await lvm('lvchange', '-q', '--activate', 'n', `wsdvg/${volume.lv_name}`);
      },
      async assertNothingLeft(workingArea) {
        assert.deepEqual(await ours(), [], 'no volume left');
        assert.equal(readFileSync('/proc/self/mountinfo', 'utf8').includes(workingArea), false, 'no mount left');
      },
    });
  });
});
