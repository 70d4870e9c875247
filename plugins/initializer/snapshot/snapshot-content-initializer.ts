import { WsdError } from '../../../core/errors.js';
import type { ContentInitializer, InitializeOptions, InitializeResult } from '../../../core/initializer/content-initializer.js';

export interface SnapshotSpec {
  snapshot?: string;
  from_volume_snapshot?: boolean;
}

/** Restores a snapshot by the name TakeSnapshot returned. A missing snapshot is `NOT_FOUND`. */
export class SnapshotContentInitializer implements ContentInitializer<SnapshotSpec> {
  readonly kind = 'snapshot';

  async initialize({ spec, dir, archives, signal }: InitializeOptions<SnapshotSpec>): Promise<InitializeResult> {
    signal.throwIfAborted();
    if (spec.from_volume_snapshot) {
      throw new WsdError('FAILED_PRECONDITION', 'restoring from a volume snapshot is not supported by wsd', { field: 'initializer.snapshot.from_volume_snapshot' });
    }
    if (!spec.snapshot) throw new WsdError('INVALID_ARGUMENT', 'initializer.snapshot.snapshot is required', { field: 'initializer.snapshot.snapshot' });
    const started = Date.now();
    const manifest = await archives.snapshot(spec.snapshot);
    await archives.restore(manifest, dir, signal);
    return { source: 'from-other', stats: [{ kind: this.kind, durationMs: Date.now() - started, bytes: manifest.bytesUncompressed }] };
  }
}
