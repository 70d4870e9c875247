/**
 * ArchiveService — backups and snapshots of this node's storage, as initializers see them: find the latest backup
 * of a workspace or a snapshot by name, and restore one into a folder under the node's policy (hostile-archive
 * checks, size bounds, digest verification before the content becomes visible, ownership, setuid). Initializers
 * that restore archives use this, never their own extraction. Implemented by core (`BackupStore`).
 */
export interface ArchiveService {
  /** The current backup of a workspace, or undefined when it has none. DATA_LOSS for a manifest that is refused. */
  latestBackup(target: { owner: string; metaId: string }): Promise<ArchiveManifest | undefined>;
  /** A snapshot by the name TakeSnapshot returned: INVALID_ARGUMENT for another shape, NOT_FOUND when absent. */
  snapshot(name: string): Promise<ArchiveManifest>;
  /**
   * Restores into `dir`, merged with what is there. `quotaBytes` bounds the data (RESOURCE_EXHAUSTED). DATA_LOSS for
   * a corrupt or refused archive; UNAVAILABLE (or storage's own error) when reading it broke off midway; on any
   * failure `dir` is as it was.
   */
  restore(manifest: ArchiveManifest, dir: string, signal?: AbortSignal, limits?: { quotaBytes?: number }): Promise<{ members: number }>;
}

/** What a manifest says about one archive (a backup or a snapshot). */
export interface ArchiveManifest {
  /** 1: a `tar+zstd` archive; 2: a chunked backup (`wsd-tree`: a tree object and the owner's packs, ADR 0007). */
  version: 1 | 2;
  kind: 'backup' | 'snapshot';
  /** Storage key of the archive. */
  object: string;
  /** Bytes of the archive (version 2: of the tree object) as stored. */
  size: number;
  /** sha256 (hex) of the archive (version 2: tree object) bytes. */
  sha256: string;
  format: string;
  createdAt: string;
  files: number;
  /** Bytes of the uncompressed tar stream: restores stop past it. Version 2: bytes of file content. */
  bytesUncompressed: number;
  /** Version 2: bytes of the tree's JSON (a restore decodes no more). */
  treeBytes?: number;
  /** Version 2: ids of every pack the tree references (garbage collection keeps them). */
  packs?: string[];
  /** Version 2: bytes this backup added to storage (new packs, index and tree). */
  uploadedBytes?: number;
  /** The workspace (meta) id the archive belongs to. */
  workspaceId: string;
  owner: string;
  /** The instance that was archived. */
  instanceId: string;
  /** HMAC-SHA256 of the manifest, when the node authenticates manifests. */
  hmac?: string;
}
