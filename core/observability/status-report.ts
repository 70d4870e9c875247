import { statfs } from 'node:fs/promises';
import type { HealthReport } from '../health/health-monitor.js';
import type { PluginStatus } from '../kernel/kernel.js';
import type { QuotaCapabilities } from '../quota/quota-strategy.js';
import type { WorkspaceRecord, WorkspaceState } from '../workspace/workspace-record.js';
import type { FailedOperation, RecentFailures } from './recent-failures.js';
import { scrubSecrets } from './redact.js';

/**
 * What the status page shows, gathered in one pass: the same facts `/readyz`, `/metrics` and the admin API give,
 * put together for a person. Served as JSON (`/status.json`) and rendered as HTML (`/`). Every text that came from
 * a request, a plugin or an error is scrubbed of secrets here; escaping is the renderer's job.
 */
export interface StatusReport {
  /** ISO 8601: when this report was gathered; ages below are relative to it. */
  generatedAt: string;
  node: string;
  version: string;
  startedAt: string;
  uptimeSeconds: number;
  /** Started, not stopping, every critical health check ok (what `/readyz` answers). */
  ready: boolean;
  health: Array<{ name: string; critical: boolean; status: string; reason?: string }>;
  plugins: Array<{ kind: string; id: string; source: string; status: string; reason?: string }>;
  disk: DiskStatus;
  quota: QuotaStatus;
  workspaces: WorkspaceStatus[];
  /** Newest first. */
  failures: FailedOperation[];
}

export interface DiskStatus {
  workingArea: string;
  /** Absent (with `error`) when the working area cannot be read. */
  totalBytes?: number;
  usedBytes?: number;
  /** Available to workspaces (what `df` calls "Avail"). */
  freeBytes?: number;
  error?: string;
}

export interface QuotaStatus {
  strategy: string;
  enforces: boolean;
  reportsUsage: boolean;
  /** Sum of the limits of the workspaces that hold a folder (initializing, ready, disposing); 0 = unlimited ones. */
  limitBytes: number;
  /** Sum of what the strategy measured; absent when it does not report usage. */
  usedBytes?: number;
}

export interface WorkspaceStatus {
  id: string;
  owner: string;
  metaId: string;
  state: WorkspaceState;
  initializer: string;
  createdAt: string;
  updatedAt: string;
  remoteStorageDisabled: boolean;
  /** The last backup this node stored for the workspace (a failed one never replaces it). */
  lastBackup?: { createdAt: string; ageSeconds: number; sizeBytes: number; key: string };
  quota: { limitBytes: number; usedBytes?: number };
  lastError?: string;
}

export interface StatusSources {
  node: string;
  version: string;
  startedAt: Date;
  workingArea: string;
  running(): boolean;
  health(): Promise<HealthReport>;
  plugins(): PluginStatus[];
  quota: { id: string; capabilities: QuotaCapabilities };
  workspaces: {
    list(): WorkspaceRecord[];
    quotaUsage(record: WorkspaceRecord): Promise<{ usedBytes?: number; limitBytes?: number }>;
  };
  failures: RecentFailures;
  /** The clock; tests pass a fixed one. */
  now?: () => Date;
}

/** States whose workspace holds a folder (and so disk and quota) on this node. */
const holdsFolder = new Set<WorkspaceState>(['initializing', 'ready', 'disposing']);

/** Gathers a {@link StatusReport}. Costs one statfs, the health checks and one quota `usage` call per ready workspace. */
export async function gatherStatus(sources: StatusSources): Promise<StatusReport> {
  const now = sources.now?.() ?? new Date();
  const running = sources.running();
  const records = sources.workspaces.list();
  const [health, disk, usages] = await Promise.all([
    running ? sources.health() : Promise.resolve<HealthReport>({ ready: false, checks: [] }),
    diskStatus(sources.workingArea),
    Promise.all(records.map((record) => sources.workspaces.quotaUsage(record).catch(() => ({}) as { usedBytes?: number }))),
  ]);
  const workspaces = records.map((record, i) => workspaceStatus(record, usages[i]!, now));
  const occupying = workspaces.filter((w) => holdsFolder.has(w.state));
  const { capabilities } = sources.quota;
  return {
    generatedAt: now.toISOString(),
    node: sources.node,
    version: sources.version,
    startedAt: sources.startedAt.toISOString(),
    uptimeSeconds: Math.max(0, Math.floor((now.getTime() - sources.startedAt.getTime()) / 1000)),
    ready: running && health.ready,
    health: health.checks.map((c) => ({ name: c.name, critical: c.critical, status: c.status, ...(c.reason ? { reason: scrubSecrets(c.reason) } : {}) })),
    plugins: sources.plugins().map((p) => ({ kind: p.kind, id: p.id, source: p.source, status: p.status, ...(p.reason ? { reason: scrubSecrets(p.reason) } : {}) })),
    disk,
    quota: {
      strategy: sources.quota.id,
      enforces: capabilities.enforces,
      reportsUsage: capabilities.reportsUsage,
      limitBytes: occupying.reduce((sum, w) => sum + w.quota.limitBytes, 0),
      ...(capabilities.reportsUsage ? { usedBytes: occupying.reduce((sum, w) => sum + (w.quota.usedBytes ?? 0), 0) } : {}),
    },
    workspaces,
    failures: sources.failures.list(),
  };
}

async function diskStatus(workingArea: string): Promise<DiskStatus> {
  try {
    const fs = await statfs(workingArea);
    return {
      workingArea,
      totalBytes: fs.blocks * fs.bsize,
      usedBytes: (fs.blocks - fs.bfree) * fs.bsize,
      freeBytes: fs.bavail * fs.bsize,
    };
  } catch (error) {
    return { workingArea, error: scrubSecrets((error as Error)?.message ?? String(error)) };
  }
}

function workspaceStatus(record: WorkspaceRecord, usage: { usedBytes?: number; limitBytes?: number }, now: Date): WorkspaceStatus {
  const backup = record.lastBackup;
  return {
    id: record.id,
    owner: record.owner,
    metaId: record.metaId,
    state: record.state,
    initializer: record.initializer.kind,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    remoteStorageDisabled: record.remoteStorageDisabled,
    ...(backup
      ? {
          lastBackup: {
            createdAt: backup.createdAt,
            ageSeconds: Math.max(0, Math.floor((now.getTime() - Date.parse(backup.createdAt)) / 1000)),
            sizeBytes: backup.sizeBytes,
            key: backup.key,
          },
        }
      : {}),
    // The strategy's figure when it has one (a volume strategy may round the limit up), else what was asked for.
    quota: { limitBytes: usage.limitBytes ?? record.quota?.limitBytes ?? record.storageQuotaBytes, ...(usage.usedBytes !== undefined ? { usedBytes: usage.usedBytes } : {}) },
    ...(record.lastError ? { lastError: scrubSecrets(record.lastError) } : {}),
  };
}
