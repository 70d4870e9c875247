import { parseSnapshotName, WsdError, type ContentInitializer, type InitializeOptions, type InitializeResult, type SnapshotSpec } from '../../../core/plugin-api.js';

export type { SnapshotSpec } from '../../../core/plugin-api.js';

/** Restores a snapshot by the name TakeSnapshot returned. A missing snapshot is `NOT_FOUND`. */
export class SnapshotContentInitializer implements ContentInitializer<SnapshotSpec> {
  readonly kind = 'snapshot';
  readonly #allowOtherOwners: boolean;

  /** `allowOtherOwners`: restore snapshots whose name starts with another owner (off by default). */
  constructor(options: { allowOtherOwners?: boolean } = {}) {
    this.#allowOtherOwners = options.allowOtherOwners ?? false;
  }

  async initialize({ spec, dir, workspace, archives, signal, quotaBytes }: InitializeOptions<SnapshotSpec>): Promise<InitializeResult> {
    signal.throwIfAborted();
    if (spec.from_volume_snapshot) {
      throw new WsdError('FAILED_PRECONDITION', 'restoring from a volume snapshot is not supported by wsd', { field: 'initializer.snapshot.from_volume_snapshot' });
    }
    if (!spec.snapshot) throw new WsdError('INVALID_ARGUMENT', 'initializer.snapshot.snapshot is required', { field: 'initializer.snapshot.snapshot' });
    const started = Date.now();
    // Snapshot names start with their owner: restoring another owner's snapshot is a setting, not an accident.
    const { owner } = parseSnapshotName(spec.snapshot, 'initializer.snapshot.snapshot');
    if (!this.#allowOtherOwners && owner !== workspace.owner) {
      throw new WsdError('PERMISSION_DENIED', `initializer.snapshot.snapshot belongs to another owner than ${workspace.owner} (initializers.snapshot.allowOtherOwners is off)`, { field: 'initializer.snapshot.snapshot' });
    }
    const manifest = await archives.snapshot(spec.snapshot);
    await archives.restore(manifest, dir, signal, { ...(quotaBytes ? { quotaBytes } : {}) });
    return { source: 'from-other', stats: [{ kind: this.kind, durationMs: Date.now() - started, bytes: manifest.bytesUncompressed }] };
  }
}
