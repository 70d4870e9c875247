/**
 * The xfs quota strategy on a real XFS with project quotas. Runs INSIDE the test guest (test/kit/guest-vm.ts), booted
 * by xfs-quota.test.ts beside it: this host's kernel has no XFS quota. The guest's /dev/vda becomes an XFS
 * mounted with prjquota, /dev/vdb an XFS mounted without it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { isSkip, skip as skipPlugin, type QuotaHandle } from '../../core/plugin-api.js';
import { silentLogger } from '../../core/observability/logger.js';
import { describeQuotaStrategyConformance } from '../conformance/quota-strategy.js';
import { runDaemonQuotaScenario } from './daemon-quota-scenario.js';
import { xfsQuotaPlugin } from '../../plugins/quota/xfs/plugin.js';
import { parseProjectReport } from '../../plugins/quota/xfs/xfs-project-quota.js';
import { XfsQuotaStrategy, type XfsQuotaOptions } from '../../plugins/quota/xfs/xfs-quota-strategy.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

if (!process.env.WSD_GUEST_RESULTS) {
  throw new Error('this file runs inside the QEMU test guest; run xfs-quota.test.js, which boots it (node scripts/test.mjs kernel/xfs-quota)');
}

const quotaMount = '/mnt/wsd-xfs';
const plainMount = '/mnt/wsd-xfs-noquota';
await run('mkfs.xfs', ['-q', '-f', '/dev/vda']);
await run('mkfs.xfs', ['-q', '-f', '/dev/vdb']);
mkdirSync(quotaMount, { recursive: true });
mkdirSync(plainMount, { recursive: true });
await run('mount', ['-o', 'prjquota', '/dev/vda', quotaMount]);
await run('mount', ['/dev/vdb', plainMount]);

/** A fresh working area on the quota file system, for one test. */
function workingArea(): string {
  return mkdtempSync(path.join(quotaMount, 'area-'));
}

function strategy(options: Partial<XfsQuotaOptions> & { workingArea: string }): XfsQuotaStrategy {
  return new XfsQuotaStrategy({ firstProjectId: 1000, lastProjectId: 1999, softHeadroomPercent: 100, commandTimeoutMs: 60_000, healthIntervalMs: 0, log: silentLogger, ...options });
}

async function xfsQuota(command: string, mount = quotaMount): Promise<string> {
  return (await run('xfs_quota', ['-x', '-c', command, mount])).stdout;
}

async function projectOf(dir: string): Promise<number> {
  const { stdout } = await run('xfs_io', ['-r', '-c', 'lsproj', dir]);
  return Number(/projid = (\d+)/.exec(stdout)![1]);
}

async function reportOf(id: number) {
  return parseProjectReport(await xfsQuota(`report -p -N -n -b -L ${id} -U ${id}`)).get(id);
}

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

const projectIdOf = (handle: QuotaHandle) => handle.data.projectId as number;

const conformanceArea = workingArea();
describeQuotaStrategyConformance('xfs', {
  create: () => strategy({ workingArea: conformanceArea }),
  workspaceRoot: () => mkdtempSync(path.join(conformanceArea, 'case-')),
});

describe('xfs quota strategy on a real XFS with project quotas', () => {
  it('a workspace with a 64 MiB quota cannot write 100 MiB (ENOSPC), its neighbour can still write', async () => {
    const area = workingArea();
    const xfs = strategy({ workingArea: area });
    const full = await xfs.provision({ workspaceId: 'full', dir: path.join(area, 'full'), limitBytes: 64 * MiB });
    const neighbour = await xfs.provision({ workspaceId: 'neighbour', dir: path.join(area, 'neighbour'), limitBytes: 64 * MiB });
    const error = await write(path.join(full.dir, 'big.bin'), 100 * MiB);
    assert.equal(error?.code, 'ENOSPC', `expected ENOSPC, got ${String(error)}`);
    const used = (await xfs.usage({ handle: full })).usedBytes!;
    assert.ok(used >= 63 * MiB && used <= 64 * MiB, `usage ${used} is at the limit`);
    assert.equal(await write(path.join(neighbour.dir, 'some.bin'), 40 * MiB), undefined, 'the neighbour writes 40 MiB');
    assert.equal((await xfs.usage({ handle: neighbour })).usedBytes, 40 * MiB);
    await xfs.release({ handle: full });
    await xfs.release({ handle: neighbour });
  });

  it('ten concurrent provisions get ten distinct project ids, set on their folders', async () => {
    const area = workingArea();
    const xfs = strategy({ workingArea: area });
    const handles = await Promise.all(Array.from({ length: 10 }, (_, i) => xfs.provision({ workspaceId: `ws-${i}`, dir: path.join(area, `ws-${i}`), limitBytes: 8 * MiB })));
    const ids = handles.map(projectIdOf);
    assert.equal(new Set(ids).size, 10, `distinct ids: ${ids.join(', ')}`);
    for (const handle of handles) assert.equal(await projectOf(handle.dir), projectIdOf(handle), `${handle.dir} carries its id`);
    await Promise.all(handles.map((handle) => xfs.release({ handle })));
    for (const id of ids) assert.equal(await reportOf(id), undefined, `project ${id} has no usage or limit left`);
  });

  it('reads taken ids from the folders at start, also an empty folder without a limit (not in the quota report)', async () => {
    const area = workingArea();
    const before = await strategy({ workingArea: area }).provision({ workspaceId: 'quiet', dir: path.join(area, 'quiet'), limitBytes: 0 });
    assert.equal(await reportOf(projectIdOf(before)), undefined, 'no usage, no limit: the quota report does not list it');
    const restarted = strategy({ workingArea: area });
    const after = await restarted.provision({ workspaceId: 'next', dir: path.join(area, 'next'), limitBytes: 8 * MiB });
    assert.notEqual(projectIdOf(after), projectIdOf(before), 'the id on the quiet folder is not handed out again');
    await restarted.release({ handle: after });
    await restarted.release({ handle: before });
  });

  it('release clears the limit and frees the id; a repeated release leaves the id\'s next owner alone', async () => {
    const area = workingArea();
    const xfs = strategy({ workingArea: area, firstProjectId: 3000, lastProjectId: 3009 });
    const first = await xfs.provision({ workspaceId: 'a', dir: path.join(area, 'a'), limitBytes: 8 * MiB });
    writeFileSync(path.join(first.dir, 'data.txt'), 'x'.repeat(10_000));
    await xfs.release({ handle: first });
    assert.equal(existsSync(first.dir), false);
    assert.equal(await reportOf(projectIdOf(first)), undefined, 'no limit left on the id');
    const second = await xfs.provision({ workspaceId: 'b', dir: path.join(area, 'b'), limitBytes: 8 * MiB });
    assert.equal(projectIdOf(second), projectIdOf(first), 'the lowest free id is used again');
    await xfs.release({ handle: first });
    assert.equal((await reportOf(projectIdOf(second)))?.hardBytes, 8 * MiB, 'the second owner keeps its limit');
    assert.equal(await write(path.join(second.dir, 'big.bin'), 12 * MiB).then((e) => e?.code), 'ENOSPC');
    await xfs.release({ handle: second });
  });

  it('a used-up id range is RESOURCE_EXHAUSTED and leaves no folder behind', async () => {
    const area = workingArea();
    const xfs = strategy({ workingArea: area, firstProjectId: 4000, lastProjectId: 4001 });
    const handles = [
      await xfs.provision({ workspaceId: 'a', dir: path.join(area, 'a'), limitBytes: MiB }),
      await xfs.provision({ workspaceId: 'b', dir: path.join(area, 'b'), limitBytes: MiB }),
    ];
    await assert.rejects(xfs.provision({ workspaceId: 'c', dir: path.join(area, 'c'), limitBytes: MiB }), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'RESOURCE_EXHAUSTED');
      assert.match(error.message, /4000\.\.4001/);
      return true;
    });
    assert.equal(existsSync(path.join(area, 'c')), false);
    for (const handle of handles) await xfs.release({ handle });
  });

  it('after a restart recover enforces again: limits lost meanwhile, a folder that lost its id, leftover limits cleared', async () => {
    const area = workingArea();
    const xfs = strategy({ workingArea: area, firstProjectId: 5000, lastProjectId: 5099 });
    const lostLimit = await xfs.provision({ workspaceId: 'lost-limit', dir: path.join(area, 'lost-limit'), limitBytes: 16 * MiB });
    const lostId = await xfs.provision({ workspaceId: 'lost-id', dir: path.join(area, 'lost-id'), limitBytes: 16 * MiB });
    const restoring = await xfs.setLimit({ handle: await xfs.provision({ workspaceId: 'restoring', dir: path.join(area, 'restoring'), limitBytes: 16 * MiB }), limitBytes: 16 * MiB, mode: 'soft' });
    writeFileSync(path.join(lostId.dir, 'old.txt'), 'old');
    // What a crash can leave: limits gone, an id gone from a folder (copied back by hand), and a limit set on an id
    // whose provision never finished.
    await xfsQuota(`limit -p bsoft=0 bhard=0 ${projectIdOf(lostLimit)}`);
    await run('xfs_io', ['-c', 'chproj -R 0', lostId.dir]);
    await xfsQuota('limit -p bhard=8m 5077');
    const handles = JSON.parse(JSON.stringify([lostLimit, lostId, restoring])) as QuotaHandle[];

    const restarted = strategy({ workingArea: area, firstProjectId: 5000, lastProjectId: 5099 });
    assert.deepEqual((await restarted.recover({ handles })).failed, []);
    assert.equal(await write(path.join(lostLimit.dir, 'big.bin'), 20 * MiB).then((e) => e?.code), 'ENOSPC', 'the lost limit is set again');
    assert.equal(await projectOf(lostId.dir), projectIdOf(lostId));
    assert.equal(await projectOf(path.join(lostId.dir, 'old.txt')), projectIdOf(lostId), 'files already in the folder are charged to it again');
    assert.equal(await write(path.join(lostId.dir, 'big.bin'), 20 * MiB).then((e) => e?.code), 'ENOSPC', 'the folder that lost its id is limited again');
    assert.equal((await reportOf(projectIdOf(restoring)))?.softBytes, 16 * MiB, 'a soft limit stays soft');
    assert.equal(await reportOf(5077), undefined, 'the leftover limit of an id no workspace uses is cleared');
    for (const handle of handles) await restarted.release({ handle });
  });

  it('soft mode lets a restore pass the limit up to the headroom, hard mode enforces the limit', async () => {
    const area = workingArea();
    const xfs = strategy({ workingArea: area, softHeadroomPercent: 50 });
    const handle = await xfs.setLimit({ handle: await xfs.provision({ workspaceId: 'r', dir: path.join(area, 'r'), limitBytes: 16 * MiB }), limitBytes: 16 * MiB, mode: 'soft' });
    assert.equal(await write(path.join(handle.dir, 'restore.bin'), 20 * MiB), undefined, '20 MiB fit under a 16 MiB soft limit');
    assert.equal(await write(path.join(handle.dir, 'more.bin'), 8 * MiB).then((e) => e?.code), 'ENOSPC', 'but not past the 24 MiB hard limit');
    await rm(path.join(handle.dir, 'more.bin'));
    await rm(path.join(handle.dir, 'restore.bin'));
    const hard = await xfs.setLimit({ handle, limitBytes: 16 * MiB, mode: 'hard' });
    assert.equal(await write(path.join(hard.dir, 'after.bin'), 20 * MiB).then((e) => e?.code), 'ENOSPC');
    assert.equal((await xfs.usage({ handle: hard })).limitBytes, 16 * MiB);
    await xfs.release({ handle: hard });
  });

  it('is skipped, saying why, where the working area is not XFS or has no enforced project quota', async () => {
    const reasons: string[] = [];
    const create = async (area: string) => {
      const result = await xfsQuotaPlugin.create({
        config: { firstProjectId: 1000, lastProjectId: 1999, softHeadroomPercent: 100, commandTimeout: 30_000, healthInterval: 0 },
        services: {},
        log: silentLogger,
        paths: { dataDir: '/var/lib/wsd', workingArea: area, stateDir: '/var/lib/wsd/state' },
        resolvePath: (p: string) => p,
        skip: skipPlugin,
      });
      assert.ok(isSkip(result), `expected a skip for ${area}`);
      reasons.push(result.reason);
    };
    await create('/tmp/wsd-not-xfs/workspaces');
    assert.match(reasons[0]!, /is on tmpfs .*not XFS/);
    await create(path.join(plainMount, 'workspaces'));
    assert.match(reasons[1]!, /has no project quota: mount it with -o prjquota/);
    await run('umount', [plainMount]);
    await run('mount', ['-o', 'pqnoenforce', '/dev/vdb', plainMount]);
    await create(path.join(plainMount, 'workspaces'));
    assert.match(reasons[2]!, /accounted but not enforced \(pqnoenforce\)/);
    const ok = await xfsQuotaPlugin.create({
      config: { firstProjectId: 1000, lastProjectId: 1999, softHeadroomPercent: 100, commandTimeout: 30_000, healthInterval: 0 },
      services: {},
      log: silentLogger,
      paths: { dataDir: '/var/lib/wsd', workingArea: path.join(quotaMount, 'not-yet-created', 'workspaces'), stateDir: '/var/lib/wsd/state' },
      resolvePath: (p: string) => p,
      skip: skipPlugin,
    });
    assert.ok(!isSkip(ok), 'a working area that does not exist yet is judged by the file system it will be on');
    assert.deepEqual(await (ok as XfsQuotaStrategy).checkHealth(), { status: 'ok' });
  });
});

describe('quota/xfs through the daemon', () => {
  it('enforces per workspace, backs up a full workspace, survives kill -9 and a reboot, and disposes without leftovers', { timeout: 600_000 }, async () => {
    await runDaemonQuotaScenario({
      dir: mkdtempSync(path.join(quotaMount, 'daemon-')),
      quotaConfig: 'quota:\n  plugin: xfs\n  xfs:\n    firstProjectId: 7000\n    lastProjectId: 7999\n',
      async reboot() {
        await run('umount', [quotaMount]);
        await run('mount', ['-o', 'prjquota', '/dev/vda', quotaMount]);
      },
      async assertNothingLeft() {
        assert.deepEqual([...parseProjectReport(await xfsQuota('report -p -N -n -b -L 7000 -U 7999')).keys()], [], 'no project id with usage or limits left');
      },
    });
  });
});
