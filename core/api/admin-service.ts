import { statfs } from 'node:fs/promises';
import type { HealthMonitor } from '../health/health-monitor.js';
import type { PluginStatus } from '../kernel/kernel.js';
import type { Logger } from '../observability/logger.js';
import { WsdError } from '../errors.js';
import type { BackupManifest } from '../content/backup-store.js';
import type { WorkspaceRecord, WorkspaceState } from '../workspace/workspace-record.js';
import type { WorkspaceService } from '../workspace/workspace-service.js';
import type { AdminServiceHandlers } from './generated/wsd/v1/AdminService.js';
import type { BackupInfo } from './generated/wsd/v1/BackupInfo.js';
import type { WorkspaceSummary } from './generated/wsd/v1/WorkspaceSummary.js';
import type { WorkspaceState as ProtoState } from './generated/wsd/v1/WorkspaceState.js';
import { toGitStatus, toInitRequest } from './content-service.js';
import { exportBackupHandler, type ExportSource } from './export-backup.js';
import { unary } from './unary.js';

export interface AdminSources {
  workspaces: WorkspaceService;
  /** Backups and snapshots in storage, for ExportBackup. */
  backups: ExportSource;
  plugins: () => PluginStatus[];
  health: HealthMonitor;
  workingArea: string;
  version: string;
}

const states: WorkspaceState[] = ['initializing', 'ready', 'disposing', 'disposed', 'failed'];
const protoState = (state: WorkspaceState): ProtoState => `WORKSPACE_STATE_${state.toUpperCase()}` as ProtoState;

/** `wsd.v1.AdminService`: what is on this node and how it is doing. */
export function adminServiceHandlers(sources: AdminSources, log: Logger): AdminServiceHandlers {
  const { workspaces } = sources;
  return {
    ListWorkspaces: unary('ListWorkspaces', log, async () => ({ workspaces: workspaces.list().map(summary) })),
    DescribeWorkspace: unary('DescribeWorkspace', log, async ({ id }) => {
      const record = workspaces.describe(id);
      const [usage, gitStatus] = await Promise.all([workspaces.quotaUsage(record), workspaces.gitStatus(record)]);
      return {
        summary: summary(record),
        folder: record.folder,
        // The limit in force: a volume strategy gives storage_quota_bytes 0 its default size (handle.limitBytes).
        quota_limit_bytes: usage.limitBytes ?? record.quota?.limitBytes ?? record.storageQuotaBytes,
        ...(usage.usedBytes !== undefined ? { quota_used_bytes: usage.usedBytes } : {}),
        last_backup: record.lastBackup ? { url: record.lastBackup.key, size_bytes: record.lastBackup.sizeBytes, created_at: record.lastBackup.createdAt } : null,
        last_error: record.lastError ?? '',
        content_source: record.contentSource ?? '',
        remote_storage_disabled: record.remoteStorageDisabled,
        initializer: record.initializer.kind,
        git_status: gitStatus ? toGitStatus(gitStatus) : null,
        warnings: record.initWarnings ?? [],
        restored_from: record.restoredFrom ?? '',
        snapshots: record.snapshots.map((s) => ({
          name: s.name,
          status: s.status,
          error: s.error ?? '',
          started_at: s.startedAt,
          size_bytes: s.sizeBytes ?? 0,
        })),
      };
    }),
    ListBackups: unary('ListBackups', log, async ({ id, owner, meta_id }) => {
      const target = id ? workspaces.describe(id) : { owner, metaId: meta_id };
      if (!id && (!owner || !meta_id)) {
        throw new WsdError('INVALID_ARGUMENT', 'give id, or owner and meta_id', { field: owner ? 'meta_id' : 'owner' });
      }
      const { backups, snapshots, latest } = await workspaces.listArchives(target);
      return { backups: backups.map(backupInfo), snapshots: snapshots.map(backupInfo), latest: latest?.object ?? '' };
    }),
    InitWorkspace: unary('InitWorkspace', log, async (request) => {
      const outcome = await workspaces.init(toInitRequest(request));
      return { content_source: outcome.source, warnings: outcome.warnings, restored_from: outcome.restoredFrom ?? '' };
    }),
    GetOperationProgress: unary('GetOperationProgress', log, async ({ id }) => ({
      operations: workspaces.operationProgress(id).map((p) => ({
        operation: p.operation,
        phase: p.phase,
        done: p.done,
        bytes: p.bytes,
        total_bytes: p.totalBytes,
        files: p.files,
        started_at: p.startedAt,
        updated_at: p.updatedAt,
        error: p.error ?? '',
      })),
    })),
    ExportBackup: exportBackupHandler(sources.backups, log),
    GetPluginStatus: unary('GetPluginStatus', log, async () => ({
      plugins: sources.plugins().map((p) => ({ kind: p.kind, id: p.id, source: p.source, status: p.status, reason: p.reason ?? '' })),
    })),
    GetNodeStatus: unary('GetNodeStatus', log, async () => {
      const fs = await statfs(sources.workingArea);
      const list = workspaces.list();
      return {
        working_area: sources.workingArea,
        free_bytes: fs.bavail * fs.bsize,
        total_bytes: fs.blocks * fs.bsize,
        workspaces: states.map((state) => ({ state: protoState(state), count: list.filter((w) => w.state === state).length })),
        ready: (await sources.health.report()).ready,
        version: sources.version,
      };
    }),
  };
}

function summary(record: WorkspaceRecord): WorkspaceSummary {
  return {
    id: record.id,
    state: protoState(record.state),
    owner: record.owner,
    meta_id: record.metaId,
    created_at: record.createdAt,
    updated_at: record.updatedAt,
  };
}

function backupInfo(manifest: BackupManifest): BackupInfo {
  return { url: manifest.object, size_bytes: manifest.size, created_at: manifest.createdAt };
}
