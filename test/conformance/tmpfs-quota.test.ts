/**
 * The quota suite against a mount-based strategy that enforces, so its ENOSPC, usage, resize and unmount-on-release
 * cases run for real before `loop` and `lvm` exist: each workspace folder is a tmpfs mounted with `size=<limit>`.
 * A test strategy only (tmpfs is memory, gone at reboot); needs root to mount.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, statfs } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { BackupStore } from '../../core/content/backup-store.js';
import { InitializerRegistry } from '../../core/initializer/initializer-registry.js';
import { silentLogger } from '../../core/observability/logger.js';
import { WorkspaceService } from '../../core/workspace/workspace-service.js';
import { EmptyContentInitializer } from '../../plugins/initializer/empty/empty-content-initializer.js';
import { memoryStorage } from '../kit/fakes.js';
import { WsdError, errnoCode, isWsdError } from '../../core/errors.js';
import { assertOwnQuotaHandle, quotaHandleVersion, type QuotaHandle, type QuotaRecoverResult, type QuotaStrategy } from '../../core/quota/quota-strategy.js';
import { tempDir } from '../kit/temp-dir.js';
import { runWithNodeTest } from './suite.js';
import { quotaStrategyConformance } from './quota-strategy.js';

const run = promisify(execFile);

class TmpfsQuotaStrategy implements QuotaStrategy {
  readonly id = 'tmpfs-test';
  readonly capabilities = { enforces: true, reportsUsage: true, resizable: true, softLimits: false } as const;

  async provision({ workspaceId, dir, limitBytes, signal }: { workspaceId: string; dir: string; limitBytes: number; signal?: AbortSignal }): Promise<QuotaHandle> {
    if (!Number.isSafeInteger(limitBytes) || limitBytes < 0) throw new WsdError('INVALID_ARGUMENT', `bad limit ${limitBytes}`, { field: 'limitBytes' });
    if (signal?.aborted) throw new WsdError('CANCELLED', 'provision cancelled');
    const size = limitBytes || 64 * 1024 * 1024;
    await mkdir(path.dirname(dir), { recursive: true });
    try {
      await mkdir(dir);
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') throw new WsdError('ALREADY_EXISTS', `${dir} exists already`);
      throw error;
    }
    try {
      await run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw new WsdError('FAILED_PRECONDITION', `cannot mount a tmpfs at ${dir}: ${(error as Error).message}`);
    }
    return { version: quotaHandleVersion, strategy: this.id, workspaceId, dir, limitBytes: size, data: { size } };
  }

  async setLimit({ handle, limitBytes, mode }: { handle: QuotaHandle; limitBytes: number; mode: 'soft' | 'hard' }): Promise<QuotaHandle> {
    assertOwnQuotaHandle(handle, this.id);
    if (!Number.isSafeInteger(limitBytes) || limitBytes <= 0) throw new WsdError('INVALID_ARGUMENT', `bad limit ${limitBytes}`, { field: 'limitBytes' });
    if (mode === 'soft') throw new WsdError('FAILED_PRECONDITION', 'a tmpfs has no soft limit');
    await run('mount', ['-o', `remount,size=${limitBytes}`, handle.dir]);
    return { ...handle, limitBytes, data: { size: limitBytes } };
  }

  async usage({ handle }: { handle: QuotaHandle }) {
    assertOwnQuotaHandle(handle, this.id);
    const fs = await statfs(handle.dir);
    return { usedBytes: (fs.blocks - fs.bfree) * fs.bsize, limitBytes: fs.blocks * fs.bsize };
  }

  async release({ handle }: { handle: QuotaHandle }): Promise<void> {
    assertOwnQuotaHandle(handle, this.id);
    // Unmount first, then remove the mount point: the order the contract asks of every mount-based strategy.
    if (await mounted(handle.dir)) {
      try {
        await run('umount', [handle.dir]);
      } catch (error) {
        throw new WsdError('UNAVAILABLE', `cannot unmount ${handle.dir}: ${(error as Error).message}`);
      }
    }
    await rm(handle.dir, { recursive: true, force: true });
  }

  async recover({ handles }: { handles: QuotaHandle[] }): Promise<QuotaRecoverResult> {
    const failed: QuotaRecoverResult['failed'] = [];
    for (const handle of handles) {
      try {
        assertOwnQuotaHandle(handle, this.id);
      } catch (error) {
        if (!isWsdError(error, 'FAILED_PRECONDITION')) throw error;
        failed.push({ workspaceId: handle.workspaceId, error });
        continue;
      }
      if (!(await mounted(handle.dir))) {
        await run('mount', ['-t', 'tmpfs', '-o', `size=${handle.limitBytes},mode=0755`, 'tmpfs', handle.dir]).catch((error: unknown) =>
          failed.push({ workspaceId: handle.workspaceId, error: new WsdError('INTERNAL', (error as Error).message) }),
        );
      }
    }
    return { failed };
  }
}

async function mounted(dir: string): Promise<boolean> {
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  return table.split('\n').some((line) => line.split(' ')[4] === dir);
}

const canMount = process.getuid?.() === 0 && (await (async () => {
  const probe = tempDir('wsd-tmpfs-probe-');
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe]);
    await run('umount', [probe]);
    return true;
  } catch {
    return false;
  }
})());

const suite = quotaStrategyConformance('tmpfs mounts (test strategy)', {
  create: () => new TmpfsQuotaStrategy(),
  workspaceRoot: () => tempDir('wsd-quota-tmpfs-'),
  limitBytes: 4 * 1024 * 1024,
});
if (!canMount) {
  for (const c of suite.cases) c.run = (context) => context.skip('needs root and tmpfs mounts');
}
runWithNodeTest(suite);

// Whatever a failed case left mounted under this file's temp folders is unmounted (lazily) before the process ends.
after(async () => {
  if (!canMount) return;
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  const left = table.split('\n').map((line) => line.split(' ')[4] ?? '').filter((dir) => /wsd-(quota-tmpfs|tmpfs-service)-/.test(dir));
  for (const dir of left.reverse()) await run('umount', ['-l', dir]).catch(() => undefined);
});

describe('WorkspaceService with a mount-based quota strategy', () => {
  it('disposes a workspace whose folder is a mount point: the strategy unmounts and removes it (no EBUSY, no leak)', async (t) => {
    if (!canMount) return t.skip('needs root and tmpfs mounts');
    const root = tempDir('wsd-tmpfs-service-');
    const storage = memoryStorage();
    const workspaces = new WorkspaceService({
      workingArea: path.join(root, 'workspaces'),
      stateDir: path.join(root, 'state'),
      storage,
      quota: new TmpfsQuotaStrategy(),
      initializers: new InitializerRegistry([new EmptyContentInitializer()]),
      backups: new BackupStore(storage, silentLogger),
      log: silentLogger,
    });
    await workspaces.recover();
    await workspaces.init({ id: 'ws-1', owner: 'o', metaId: 'm', initializer: { kind: 'empty', spec: {} }, remoteStorageDisabled: false, storageQuotaBytes: 8 * 1024 * 1024 });
    const folder = path.join(root, 'workspaces', 'ws-1');
    assert.equal(await mounted(folder), true);
    writeFileSync(path.join(folder, 'work.txt'), 'work');
    await workspaces.dispose('ws-1', { backup: true });
    assert.equal(await mounted(folder), false, 'unmounted');
    assert.equal(existsSync(folder), false, 'mount point removed');
    await workspaces.stop();
  });
});
