import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { WsdError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { quotaHandleVersion, type QuotaHandle, type QuotaStrategy } from '../quota/quota-strategy.js';
import type { WorkspaceRecord } from './workspace-record.js';

/**
 * The workspace service's side of the quota contract (ADR 0004): handles go back to the strategy that made them,
 * the strategy releases (removes) the folders it created, and handles the configured strategy cannot take are
 * detached — served without enforcement, never released — until the strategy that made them is configured again.
 */
export class WorkspaceQuotas {
  readonly #quota: QuotaStrategy;
  readonly #log: Logger;
  /** Ids whose persisted quota handle the configured strategy cannot take → why. */
  readonly #detached = new Map<string, string>();

  constructor(quota: QuotaStrategy, log: Logger) {
    this.#quota = quota;
    this.#log = log;
  }

  isDetached(id: string): boolean {
    return this.#detached.has(id);
  }

  detachedReason(id: string): string | undefined {
    return this.#detached.get(id);
  }

  /**
   * Hands the workspace's quota handle back to the strategy, which removes the folder and frees what it took —
   * only when the strategy created the folder for this record (`record.quota` is set right after provisioning): a
   * failed call never deletes what it did not create. Core never deletes a provisioned folder itself (quota
   * contract v1: on a mount point that is EBUSY). The caller clears `record.quota` once this resolves.
   */
  async release(record: WorkspaceRecord, log: Logger): Promise<void> {
    const handle = record.quota;
    if (!handle) return;
    this.assertAttached(record, 'release the folder of');
    await this.#quota.release({ handle });
    // A strategy that breaks the contract is reported, not covered for: deleting in its place may hit a mount.
    const left = await lstat(record.folder).then(() => true, () => false);
    if (left) log.error('the quota strategy released the workspace but left its folder', { strategy: handle.strategy, folder: record.folder });
  }

  /**
   * The quota part of a restart: every persisted handle goes to the strategy that made it before anything uses it.
   * A handle the configured strategy cannot take — another strategy's (the operator switched `quota.plugin`), one
   * naming another folder than its record, one the strategy reports it cannot re-attach — is detached: logged
   * loudly here, once; the workspace is served without quota enforcement; its dispose is refused (ADR 0004).
   * `unreadable`: ids whose state file cannot be read; the strategy leaves what it finds of them alone.
   */
  async recover(records: WorkspaceRecord[], unreadable: string[] = []): Promise<void> {
    const strategy = this.#quota;
    this.#log.info('quota strategy', { strategy: strategy.id, ...strategy.capabilities });
    const own: QuotaHandle[] = [];
    for (const record of records) {
      const handle = record.quota;
      if (!handle) continue;
      // State files of wsd 0.1 hold handles from before handles were versioned; their shape is version 1.
      (handle as { version?: number }).version ??= quotaHandleVersion;
      if (handle.strategy !== strategy.id) {
        this.#detach(record, `it was provisioned by quota strategy "${handle.strategy}", but "${strategy.id}" is configured; configure quota.plugin "${handle.strategy}" to release it`);
      } else if (handle.workspaceId !== record.id || path.resolve(handle.dir) !== path.resolve(record.folder)) {
        this.#detach(record, `its quota handle names ${handle.dir} (workspace ${handle.workspaceId}), not its folder ${record.folder}`);
      } else {
        own.push(handle);
      }
    }
    // Workspaces known without a handle to give: whatever the strategy finds of them is not a leftover.
    const leaveAlone = [...new Set([...unreadable, ...records.filter((r) => this.#detached.has(r.id)).map((r) => r.id)])];
    const { failed = [] } = (await strategy.recover({ handles: own, ...(leaveAlone.length ? { leaveAlone } : {}) })) ?? {};
    for (const { workspaceId, error } of failed) {
      const record = records.find((r) => r.id === workspaceId);
      if (record) this.#detach(record, `quota strategy "${strategy.id}" could not re-attach its handle: ${error.message}`);
    }
  }

  #detach(record: WorkspaceRecord, reason: string): void {
    this.#detached.set(record.id, reason);
    this.#log.error('workspace served without quota enforcement: its quota handle is detached, and it cannot be disposed until this is fixed', {
      workspaceId: record.id,
      state: record.state,
      reason,
    });
  }

  assertAttached(record: WorkspaceRecord, what: string): void {
    const reason = this.#detached.get(record.id);
    if (reason) throw new WsdError('FAILED_PRECONDITION', `cannot ${what} workspace ${record.id}: ${reason}`);
  }
}
