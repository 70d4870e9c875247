import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import {
  WsdError,
  assertOwnQuotaHandle,
  errnoCode,
  isWsdError,
  makeFolders,
  mountsAtOrBelow,
  quotaHandleVersion,
  type QuotaHandle,
  type QuotaRecoverResult,
  type QuotaStrategy,
  type QuotaUsage,
} from '../../../core/plugin-api.js';

/**
 * Quota contract v1 without a quota: workspace folders are plain folders in the working area, the limit is only
 * recorded. `provision` is a mkdir, `release` a recursive delete of the folder.
 */
export class NoneQuotaStrategy implements QuotaStrategy {
  readonly id = 'none';
  readonly capabilities = { enforces: false, reportsUsage: false, resizable: true, softLimits: false } as const;

  async provision({ workspaceId, dir, limitBytes }: { workspaceId: string; dir: string; limitBytes: number }): Promise<QuotaHandle> {
    assertLimit(limitBytes);
    await makeFolders(path.dirname(dir));
    try {
      // Not recursive: an existing folder (or anything else at `dir`) is refused, never adopted.
      await mkdir(dir);
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') throw new WsdError('ALREADY_EXISTS', `workspace folder ${dir} exists already`);
      throw new WsdError('INTERNAL', `cannot create ${dir}: ${(error as Error).message}`, { cause: error });
    }
    return { version: quotaHandleVersion, strategy: this.id, workspaceId, dir, limitBytes, data: {} };
  }

  async setLimit({ handle, limitBytes, mode }: { handle: QuotaHandle; limitBytes: number; mode: 'soft' | 'hard' }): Promise<QuotaHandle> {
    assertOwnQuotaHandle(handle, this.id);
    assertLimit(limitBytes);
    if (mode === 'soft') throw new WsdError('FAILED_PRECONDITION', 'quota strategy "none" has no soft limits');
    return { ...handle, limitBytes };
  }

  async usage({ handle }: { handle: QuotaHandle }): Promise<QuotaUsage> {
    assertOwnQuotaHandle(handle, this.id);
    return handle.limitBytes > 0 ? { limitBytes: handle.limitBytes } : {};
  }

  async release({ handle }: { handle: QuotaHandle }): Promise<void> {
    assertOwnQuotaHandle(handle, this.id);
    // A recursive delete descends into file systems mounted inside the folder (a host path bind-mounted by hand)
    // and would delete what is not the workspace's: refuse until they are unmounted.
    const mounted = await mountsAtOrBelow(handle.dir);
    if (mounted.length > 0) {
      throw new WsdError('UNAVAILABLE', `cannot remove workspace folder ${handle.dir}: a file system is mounted at ${mounted.join(', ')}; unmount it first`);
    }
    try {
      // `force`: a folder that is already gone is released (idempotent).
      await rm(handle.dir, { recursive: true, force: true, maxRetries: 3 });
    } catch (error) {
      // EBUSY: something is mounted at or below the folder; a later dispose retries once it is unmounted.
      const code = errnoCode(error) === 'EBUSY' ? 'UNAVAILABLE' : 'INTERNAL';
      throw new WsdError(code, `cannot remove workspace folder ${handle.dir}: ${(error as Error).message}`, { cause: error });
    }
  }

  async recover({ handles }: { handles: QuotaHandle[] }): Promise<QuotaRecoverResult> {
    // Nothing to re-attach; a handle is only checked, so a newer wsd's handle is reported rather than used.
    const failed: QuotaRecoverResult['failed'] = [];
    for (const handle of handles) {
      try {
        assertOwnQuotaHandle(handle, this.id);
      } catch (error) {
        // Another strategy's handle is a caller bug and fails the whole call; an unknown version is this handle's.
        if (!isWsdError(error, 'FAILED_PRECONDITION')) throw error;
        failed.push({ workspaceId: handle.workspaceId, error });
      }
    }
    return { failed };
  }
}

function assertLimit(limitBytes: number): void {
  if (!Number.isSafeInteger(limitBytes) || limitBytes < 0) {
    throw new WsdError('INVALID_ARGUMENT', `limitBytes must be a non-negative integer, got ${limitBytes}`, { field: 'limitBytes' });
  }
}
