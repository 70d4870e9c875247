import { WsdError } from '../errors.js';
import type { HealthResult } from '../health/health-check.js';
import { createToken } from '../kernel/token.js';

/**
 * QuotaStrategy — owns one workspace folder's existence and limits how much disk it may use. Contract v1
 * (`wsd.quota.v1`); ADR 0004 records why it is shaped this way.
 *
 * ## Glossary
 * - **strategy id** — {@link QuotaStrategy.id}, the plugin id (`none`, `loop`, `xfs`, `lvm`). Stamped on every handle.
 * - **dir** — the workspace folder, `<workingArea>/<workspaceId>`, absolute. For mount-based strategies (loop image,
 *   LVM volume) it is the mount point; for the others a plain folder (with a project id, for `xfs`).
 * - **handle** — {@link QuotaHandle}: plain, versioned JSON returned by `provision`, persisted by core in the
 *   workspace's state file and handed back on every later call, also after a restart and after an upgrade.
 * - **limitBytes** — bytes the folder may hold; 0 = unlimited (a strategy that needs a size, such as a volume, uses
 *   its configured default and reports it in `handle.limitBytes`).
 *
 * ## Lifecycle (what core does, in order)
 * 1. `provision` creates `dir` (it must not exist) with `limitBytes` as its limit — before any content exists.
 * 2. With `capabilities.softLimits` and a limit: `setLimit(soft)` while content is restored (a compressed backup may
 *    expand past the limit halfway through), then, once the content is in, `setLimit(hard)`. Without `softLimits`
 *    core calls neither: the limit given to `provision` is the final, hard one, and a restore is bounded only by it —
 *    a volume strategy must provision the full size asked for.
 * 3. `usage` any time while the workspace is ready, only when `capabilities.reportsUsage`.
 * 4. `release` on dispose, after the final backup is stored and the git status read; also after a failed init (only
 *    when `provision` had succeeded) and for an init a restart interrupted. **The strategy removes the folder:** core
 *    never deletes a provisioned folder itself (`rm` on a mount point is EBUSY and would leave the volume behind).
 * 5. After a restart, `recover` gets every persisted handle of *this* strategy (core splits by `handle.strategy`)
 *    before any other call touches them, for every state (ready, being disposed, interrupted init).
 *
 * ## Rules every method follows
 * - One call at a time per handle (core holds a lock per workspace); calls for different workspaces run
 *   concurrently, so shared state (id allocation, loop devices, a volume group) needs the strategy's own lock.
 * - A handle whose `strategy` is not this strategy's id is refused with `INVALID_ARGUMENT` (core never sends one);
 *   a handle whose `version` the strategy does not know (written by a newer wsd) with `FAILED_PRECONDITION` —
 *   never guessed at.
 * - Failures are `WsdError`s with the codes listed per method, plus `INTERNAL` for the unexpected. No method
 *   leaves half of its work behind: a failed `provision` leaves no folder, no id, no image, no volume.
 * - Strategies that cannot run on this host (no loop devices, no XFS project quota, no volume group) `skip` at
 *   plugin creation instead of failing later.
 */
export interface QuotaStrategy {
  /** The strategy's id, equal to its plugin id; stamped on every handle it makes. */
  readonly id: string;
  readonly capabilities: QuotaCapabilities;

  /**
   * Creates `dir` with a limit of `limitBytes` (enforced at once when `enforces`) and returns its handle. Parent
   * folders are created as needed.
   *
   * Errors: `ALREADY_EXISTS` when `dir` exists (as anything, also a dangling symlink) — nothing is touched, not even
   * its content; `INVALID_ARGUMENT` (field `limitBytes`) for a negative, fractional or unsafe limit;
   * `RESOURCE_EXHAUSTED` when there is no room (disk, thin pool) or no free quota id or loop device;
   * `FAILED_PRECONDITION` when the host lost what the strategy needs since start; `CANCELLED` when `signal` aborts
   * (what was done is undone). Cost: `none` a mkdir; `xfs` a few `xfs_quota` calls under a lock; `loop`/`lvm`
   * allocate, format and mount a file system (seconds).
   */
  provision(options: { workspaceId: string; dir: string; limitBytes: number; signal?: AbortSignal }): Promise<QuotaHandle>;

  /**
   * Changes the limit and returns the updated handle (core persists it). `soft` may be exceeded temporarily
   * (restores); `hard` is enforced. Setting the limit a handle already has succeeds.
   *
   * Errors: `INVALID_ARGUMENT` (field `limitBytes`) for a bad limit; `FAILED_PRECONDITION` for `soft` without
   * `capabilities.softLimits`, or a limit that needs resizing without `capabilities.resizable`;
   * `RESOURCE_EXHAUSTED` when growing needs room that is not there. Cost: one quota call; growing a volume runs
   * a file system resize.
   */
  setLimit(options: { handle: QuotaHandle; limitBytes: number; mode: 'soft' | 'hard' }): Promise<QuotaHandle>;

  /**
   * Current use. Fields the strategy cannot measure are left out (`usedBytes` is there exactly when
   * `capabilities.reportsUsage`). Must be cheap — a quota or statfs query, never a walk of the tree: the admin
   * API calls it for every describe. Errors: `NOT_FOUND` when the handle's resources are gone.
   */
  usage(options: { handle: QuotaHandle }): Promise<QuotaUsage>;

  /**
   * Removes the folder and everything in it and frees all the handle took (unmounting first for mount-based
   * strategies; the image, volume or project id after). Idempotent: a handle whose folder or resources are already
   * gone, partly or wholly, succeeds — core calls it again after a crash in the middle of a release.
   *
   * Errors: `UNAVAILABLE` when something still holds the folder (umount is EBUSY: a process has a file open) — core
   * keeps the handle and a later dispose retries; `FAILED_PRECONDITION` for a handle version the strategy does not
   * know. Cost: proportional to the content for plain folders (a recursive delete); unmount plus an image or volume
   * removal for mount-based strategies.
   */
  release(options: { handle: QuotaHandle }): Promise<void>;

  /**
   * Re-attaches persisted handles after a restart (remounts volumes, rebuilds id allocation tables, re-applies
   * limits), before any other call. `handles` holds only this strategy's handles; resources the strategy finds that
   * no handle names may be cleaned up. A handle whose resources are gone entirely is not a failure (a release may
   * have been interrupted; `release` later succeeds). A handle that cannot be re-attached — an unknown `version`,
   * an image that does not mount — is reported in `failed` with a clear error, and the others are still
   * re-attached: one broken workspace must not keep the node from starting. Core serves such a workspace without
   * quota and refuses to dispose it until an operator acts.
   *
   * Resources of the workspaces in `leaveAlone` are never cleaned up, though no handle names them: core knows
   * these workspaces but hands no handle over (its state file is unreadable; its handle is detached because it names
   * another folder than its record). A strategy that cleans up what no handle names must spare them.
   *
   * Errors (the whole call): `INVALID_ARGUMENT` for a handle of another strategy; `FAILED_PRECONDITION` when the
   * strategy cannot work at all (then the daemon does not start). Cost: once per start, linear in handles.
   */
  recover(options: { handles: QuotaHandle[]; leaveAlone?: string[] }): Promise<QuotaRecoverResult>;

  /**
   * Optional: whether the strategy can do its work on this host right now (loop: a free loop device and a writable
   * images folder; xfs: the quota still on; lvm: the thin pool active), for the `quota` health check. Cheap (it runs
   * with readiness probes: cache anything that costs more than a stat), honours `signal`, and reports rather than
   * throws. A strategy without it counts as usable.
   */
  checkHealth?(options: { signal: AbortSignal }): Promise<HealthResult>;
}

/** What core reads before calling a strategy; a strategy declares what is true on this host. */
export interface QuotaCapabilities {
  /** Writes beyond the limit fail (ENOSPC or EDQUOT) rather than being merely recorded. */
  readonly enforces: boolean;
  /** `usage` returns `usedBytes`; without it core never calls `usage`. */
  readonly reportsUsage: boolean;
  /** `setLimit` can grow a limit after provisioning. */
  readonly resizable: boolean;
  /**
   * `setLimit(mode: 'soft')` means something: a limit that may be exceeded for a while (XFS soft quota). Without it
   * core skips the soft phase of an init and the limit given to `provision` is final (volumes: the volume's size).
   */
  readonly softLimits: boolean;
}

/** The version of {@link QuotaHandle} this contract defines. */
export const quotaHandleVersion = 1;

export interface QuotaHandle {
  /**
   * Format of this handle. Contract v1 handles are `1`. A strategy that changes what it keeps in `data`
   * incompatibly bumps it, keeps reading the older versions, and refuses newer ones it does not know.
   */
  version: 1;
  /** Id of the strategy that made it; a handle is only ever given back to that strategy. */
  strategy: string;
  workspaceId: string;
  dir: string;
  limitBytes: number;
  /** Strategy-specific JSON (image path, project id, volume name): everything needed to find the resources again. */
  data: Record<string, string | number | boolean | null>;
}

export interface QuotaUsage {
  usedBytes?: number;
  limitBytes?: number;
}

export interface QuotaRecoverResult {
  /** Handles that could not be re-attached, by workspace id, each with why (the rest were re-attached). */
  failed: Array<{ workspaceId: string; error: WsdError }>;
}

/**
 * The checks every method makes first on a handle it is given: `INVALID_ARGUMENT` for another strategy's handle
 * (core never sends one), `FAILED_PRECONDITION` for a handle version this contract does not define (written by a
 * newer wsd). A strategy with versions of its own `data` checks those after.
 */
export function assertOwnQuotaHandle(handle: QuotaHandle, strategyId: string): void {
  if (handle.strategy !== strategyId) {
    throw new WsdError('INVALID_ARGUMENT', `quota handle of workspace ${handle.workspaceId} was made by strategy "${handle.strategy}", not "${strategyId}"`, { field: 'handle.strategy' });
  }
  if (handle.version !== quotaHandleVersion) {
    throw new WsdError(
      'FAILED_PRECONDITION',
      `quota handle of workspace ${handle.workspaceId} has version ${JSON.stringify(handle.version)}; strategy "${strategyId}" knows version ${quotaHandleVersion} (was it written by a newer wsd?)`,
    );
  }
}

export const quotaStrategyToken = createToken<QuotaStrategy>('wsd.quota.v1');
