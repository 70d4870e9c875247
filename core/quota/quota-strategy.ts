import { createToken } from '../kernel/token.js';

/**
 * QuotaStrategy — limits how much disk one workspace folder may use.
 *
 * Lifecycle of one workspace: `provision` (before any content exists; creates the folder) → `setLimit(soft)` while
 * content is restored (a compressed backup may expand past the limit; a hard limit would break the restore) →
 * `setLimit(hard)` once ready → `usage` any time → `release` on dispose (after the final backup is stored).
 * After a daemon restart, `recover` gets back every handle that was persisted and re-attaches them (remounts,
 * rebuilds id allocation tables) before any other call.
 *
 * - A {@link QuotaHandle} is plain JSON: the daemon persists it in the workspace's state file, so everything the
 *   strategy needs to find its resources again must be in `data`.
 * - `release` is idempotent and must succeed for a handle whose resources are already gone.
 * - Failures are `WsdError`s: `RESOURCE_EXHAUSTED` (no space or no free quota id), `FAILED_PRECONDITION` (the host
 *   lacks what the strategy needs), `INVALID_ARGUMENT` (a bad limit), `INTERNAL`.
 * - Strategies that cannot run on this host (no loop devices, no XFS project quota) `skip` at plugin creation
 *   instead of failing later.
 */
export interface QuotaStrategy {
  readonly capabilities: QuotaCapabilities;

  /** Creates `dir` (which must not exist yet) with a limit of `limitBytes` (0 = unlimited) and returns its handle. */
  provision(options: { workspaceId: string; dir: string; limitBytes: number; signal?: AbortSignal }): Promise<QuotaHandle>;

  /** Changes the limit. `soft` may be exceeded temporarily (restores); `hard` is enforced. Needs `resizable` to grow. */
  setLimit(options: { handle: QuotaHandle; limitBytes: number; mode: 'soft' | 'hard' }): Promise<QuotaHandle>;

  /** Current use. Fields the strategy cannot measure are left out (see `capabilities.reportsUsage`). */
  usage(options: { handle: QuotaHandle }): Promise<QuotaUsage>;

  /** Frees what `provision` took (not the folder's content: the caller deletes that). Idempotent. */
  release(options: { handle: QuotaHandle }): Promise<void>;

  /** Re-attaches persisted handles after a restart; handles not named here may be cleaned up. */
  recover(options: { handles: QuotaHandle[] }): Promise<void>;
}

export interface QuotaCapabilities {
  /** Writes beyond the limit fail (ENOSPC/EDQUOT) rather than being merely reported. */
  readonly enforces: boolean;
  /** `usage` returns `usedBytes`. */
  readonly reportsUsage: boolean;
  /** `setLimit` can grow a limit after provisioning. */
  readonly resizable: boolean;
}

export interface QuotaHandle {
  /** Id of the strategy that made it; a handle is only ever given back to that strategy. */
  strategy: string;
  workspaceId: string;
  dir: string;
  limitBytes: number;
  /** Strategy-specific JSON (image path, project id, volume name). */
  data: Record<string, string | number | boolean | null>;
}

export interface QuotaUsage {
  usedBytes?: number;
  limitBytes?: number;
}

export const quotaStrategyToken = createToken<QuotaStrategy>('wsd.quota.v1');
