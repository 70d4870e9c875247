import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { WsdError, errnoCode } from '../../../core/errors.js';
import type { QuotaHandle, QuotaStrategy, QuotaUsage } from '../../../core/quota/quota-strategy.js';
import { makeFolders } from '../../../core/fs/make-folders.js';

/** Enforces nothing: workspace folders are plain folders in the working area. The limit is only recorded. */
export class NoneQuotaStrategy implements QuotaStrategy {
  readonly capabilities = { enforces: false, reportsUsage: false, resizable: true } as const;

  async provision({ workspaceId, dir, limitBytes }: { workspaceId: string; dir: string; limitBytes: number }): Promise<QuotaHandle> {
    assertLimit(limitBytes);
    await makeFolders(path.dirname(dir));
    try {
      await mkdir(dir);
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') throw new WsdError('ALREADY_EXISTS', `workspace folder ${dir} exists already`);
      throw new WsdError('INTERNAL', `cannot create ${dir}: ${(error as Error).message}`, { cause: error });
    }
    return { strategy: 'none', workspaceId, dir, limitBytes, data: {} };
  }

  async setLimit({ handle, limitBytes }: { handle: QuotaHandle; limitBytes: number }): Promise<QuotaHandle> {
    assertLimit(limitBytes);
    return { ...handle, limitBytes };
  }

  async usage({ handle }: { handle: QuotaHandle }): Promise<QuotaUsage> {
    return handle.limitBytes > 0 ? { limitBytes: handle.limitBytes } : {};
  }

  async release(): Promise<void> {}

  async recover(): Promise<void> {}
}

function assertLimit(limitBytes: number): void {
  if (!Number.isSafeInteger(limitBytes) || limitBytes < 0) {
    throw new WsdError('INVALID_ARGUMENT', `limitBytes must be a non-negative integer, got ${limitBytes}`, { field: 'limitBytes' });
  }
}
