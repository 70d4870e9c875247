import { WsdError } from '../errors.js';
import type { ContentSource, InitializerStats } from '../initializer/content-initializer.js';
import type { QuotaHandle } from '../quota/quota-strategy.js';

/**
 * `initializing → ready → disposing → disposed`, and `failed` when an init fails (its folder released by the quota
 * strategy — or, when that release failed, still held by the kept quota handle, released first by the next init or
 * dispose of the id; the record stays so WaitForInit and describe can say why).
 */
export type WorkspaceState = 'initializing' | 'ready' | 'disposing' | 'disposed' | 'failed';

export interface BackupRef {
  /** Storage key of the archive; what BackupWorkspace returns. */
  key: string;
  sizeBytes: number;
  createdAt: string;
  /** Tree fingerprint taken just before archiving; an unchanged tree is not backed up again. */
  fingerprint?: string;
}

export interface SnapshotOperation {
  name: string;
  status: 'running' | 'done' | 'failed';
  startedAt: string;
  sizeBytes?: number;
  error?: string;
}

/**
 * Everything wsd knows about one workspace instance, persisted as `<dataDir>/state/<id>.json` after every
 * state change: enough to serve it again, finish its disposal or clean it up after a restart.
 */
export interface WorkspaceRecord {
  /** Format of this file, for future migrations. */
  version: 1;
  id: string;
  owner: string;
  /** The workspace id shared by all instances; backups are stored under it. */
  metaId: string;
  state: WorkspaceState;
  folder: string;
  /** Initializer kind (`empty`, `git`, ...) and its spec as received, with credentials (`auth_password`, `auth_ots`) redacted. */
  initializer: { kind: string; spec: unknown };
  remoteStorageDisabled: boolean;
  storageQuotaBytes: number;
  /**
   * Set once the quota strategy created the folder: the mark that this workspace's folder is wsd's to delete. A
   * failed or interrupted init without it deletes nothing (the folder, if any, was not made by this call).
   */
  quota?: QuotaHandle;
  contentSource?: ContentSource;
  initStats?: InitializerStats[];
  /** Set when "a backup always wins" replaced the requested initializer: the backup that was restored. */
  restoredFrom?: string;
  /** What did not go as the init request asked (a missing branch, a backup restored instead, …), for describe. */
  initWarnings?: string[];
  lastBackup?: BackupRef;
  snapshots: SnapshotOperation[];
  lastError?: string;
  /**
   * Set when DisposeWorkspace starts: what it was asked to do, so a restart can finish it. `archiveKey` is the final
   * backup's key, chosen when the dispose starts: a dispose resumed later still stores its backup under the time it
   * was taken for, so it cannot pass as newer than a backup another instance made meanwhile (latest.json CAS).
   */
  dispose?: { backup: boolean; finalBackupDone: boolean; archiveKey?: string };
  createdAt: string;
  updatedAt: string;
}

const idPattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
export const maxIdLength = 128;

/** Whether `id` is a valid instance id (see {@link assertValidWorkspaceId}). */
export function isValidWorkspaceId(id: string): boolean {
  return id.length > 0 && id.length <= maxIdLength && idPattern.test(id) && !id.includes('..');
}

/** Instance ids become folder names: no separators, no dot-only names, bounded length. */
export function assertValidWorkspaceId(id: unknown, field = 'id'): asserts id is string {
  if (typeof id !== 'string' || id.length === 0) throw new WsdError('INVALID_ARGUMENT', `${field} is required`, { field });
  if (id.length > maxIdLength) {
    throw new WsdError('INVALID_ARGUMENT', `${field} must be at most ${maxIdLength} characters`, { field });
  }
  if (!isValidWorkspaceId(id)) {
    throw new WsdError('INVALID_ARGUMENT', `${field} ${JSON.stringify(id)} may only contain letters, digits, ".", "_" and "-" (and no "..")`, { field });
  }
}

/** Owner and meta id become storage key segments: same rules as instance ids. */
export function assertValidKeySegment(value: unknown, field: string): asserts value is string {
  assertValidWorkspaceId(value, field);
}
