import { WsdError, type ContentInitializer, type InitializeOptions, type InitializeResult, type FromBackupSpec } from '../../../core/plugin-api.js';

export type { FromBackupSpec } from '../../../core/plugin-api.js';

/**
 * Restores the latest backup of the workspace (`metadata.meta_id`). No backup is `NOT_FOUND` — never a silently
 * empty workspace, which is how users lost work with the seed daemon.
 */
export class BackupContentInitializer implements ContentInitializer<FromBackupSpec> {
  readonly kind = 'backup';

  async initialize({ spec, dir, workspace, archives, signal, quotaBytes }: InitializeOptions<FromBackupSpec>): Promise<InitializeResult> {
    signal.throwIfAborted();
    if (spec.from_volume_snapshot) {
      throw new WsdError('FAILED_PRECONDITION', 'restoring from a volume snapshot is not supported by wsd', { field: 'initializer.backup.from_volume_snapshot' });
    }
    const started = Date.now();
    const manifest = await archives.latestBackup(workspace);
    if (!manifest) throw new WsdError('NOT_FOUND', `no backup of workspace ${workspace.metaId} (owner ${workspace.owner}) exists`);
    await archives.restore(manifest, dir, signal, { ...(quotaBytes ? { quotaBytes } : {}) });
    return { source: 'from-backup', stats: [{ kind: this.kind, durationMs: Date.now() - started, bytes: manifest.bytesUncompressed }] };
  }

  checkoutLocations(spec: FromBackupSpec): string[] {
    return spec.checkout_location ? [spec.checkout_location] : [];
  }
}
