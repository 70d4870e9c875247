import { WsdError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { GitStatusReport, InitRequest, WorkspaceService } from '../workspace/workspace-service.js';
import type { GitStatus } from './generated/contentservice/GitStatus.js';
import type { InitWorkspaceRequest__Output } from './generated/wsdaemon/InitWorkspaceRequest.js';
import type { WorkspaceContentServiceHandlers } from './generated/wsdaemon/WorkspaceContentService.js';
import { toInitializerRef } from './initializer-specs.js';
import { unary } from './unary.js';

/** `wsdaemon.WorkspaceContentService`: thin translation between the wire contract and WorkspaceService. */
export function contentServiceHandlers(workspaces: WorkspaceService, log: Logger): WorkspaceContentServiceHandlers {
  return {
    InitWorkspace: unary('InitWorkspace', log, async (request) => {
      await workspaces.init(toInitRequest(request));
      return {};
    }),
    WaitForInit: unary('WaitForInit', log, async ({ id }) => {
      await workspaces.waitForInit(required(id, 'id'));
      return {};
    }),
    IsWorkspaceExists: unary('IsWorkspaceExists', log, async ({ id }) => ({ exists: workspaces.exists(required(id, 'id')) })),
    TakeSnapshot: unary('TakeSnapshot', log, async ({ id, return_immediately }) => ({
      url: await workspaces.takeSnapshot(required(id, 'id'), { returnImmediately: return_immediately }),
    })),
    DisposeWorkspace: unary('DisposeWorkspace', log, async ({ id, backup }) => ({
      git_status: toGitStatus(await workspaces.dispose(required(id, 'id'), { backup })),
    })),
    BackupWorkspace: unary('BackupWorkspace', log, async ({ id }) => ({ url: (await workspaces.backup(required(id, 'id'))).key })),
  };
}

export function toInitRequest(request: InitWorkspaceRequest__Output): InitRequest {
  const id = required(request.id, 'id');
  if (!request.metadata) throw new WsdError('INVALID_ARGUMENT', 'metadata is required', { field: 'metadata' });
  // Wire → domain here, and only here: plugins never see proto-loader output.
  const initializer = toInitializerRef(request.initializer);
  return {
    id,
    owner: required(request.metadata.owner, 'metadata.owner'),
    metaId: required(request.metadata.meta_id, 'metadata.meta_id'),
    initializer,
    remoteStorageDisabled: request.remote_storage_disabled,
    storageQuotaBytes: request.storage_quota_bytes,
  };
}

export function toGitStatus(report: GitStatusReport | undefined): GitStatus {
  if (!report) return {};
  return {
    branch: report.branch,
    latest_commit: report.latestCommit,
    uncommited_files: report.uncommittedFiles,
    untracked_files: report.untrackedFiles,
    unpushed_commits: report.unpushedCommits,
    total_uncommited_files: report.totalUncommittedFiles,
    total_untracked_files: report.totalUntrackedFiles,
    total_unpushed_commits: report.totalUnpushedCommits,
  };
}

function required(value: string | undefined, field: string): string {
  if (!value) throw new WsdError('INVALID_ARGUMENT', `${field} is required`, { field });
  return value;
}
