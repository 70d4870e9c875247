import { type ContentInitializer, type InitializeResult } from '../../../core/plugin-api.js';

/** Leaves the workspace folder empty: the `empty` initializer of the API. */
export class EmptyContentInitializer implements ContentInitializer<Record<string, never>> {
  readonly kind = 'empty';

  async initialize(): Promise<InitializeResult> {
    return { source: 'from-other', stats: [{ kind: this.kind, durationMs: 0, bytes: 0 }] };
  }
}
