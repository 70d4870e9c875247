import { isWsdError, WsdError, type ContentInitializer, type ContentSource, type InitializeOptions, type InitializeResult } from '../../../core/plugin-api.js';

/** A `WorkspaceInitializer` message as the API delivers it: one field set, named by `spec`. */
export interface InitializerMessage {
  spec?: string;
  [kind: string]: unknown;
}

export interface CompositeSpec {
  initializer?: InitializerMessage[];
}

/** Priority when children disagree: restoring user work says more about the content than cloning does. */
const sourceRank: Record<ContentSource, number> = { 'from-backup': 2, 'from-prebuild': 1, 'from-other': 0 };

/** Runs its children in order into the same folder, stopping at the first failure. */
export class CompositeContentInitializer implements ContentInitializer<CompositeSpec> {
  readonly kind = 'composite';

  async initialize(options: InitializeOptions<CompositeSpec>): Promise<InitializeResult> {
    options.signal.throwIfAborted();
    const children = options.spec.initializer ?? [];
    let source: ContentSource = 'from-other';
    const stats: InitializeResult['stats'] = [];
    for (const [index, child] of children.entries()) {
      const field = `initializer.composite.initializer[${index}]`;
      const kind = child?.spec;
      if (!kind) throw new WsdError('INVALID_ARGUMENT', `${field} has no initializer set`, { field });
      options.signal.throwIfAborted();
      let result: InitializeResult;
      try {
        result = await options.initializers.get(kind).initialize({ ...options, spec: child[kind] ?? {} });
      } catch (error) {
        if (isWsdError(error)) throw new WsdError(error.code, `${field} (${kind}): ${error.message}`, { cause: error, field: error.field ?? field });
        throw error;
      }
      if (sourceRank[result.source] > sourceRank[source]) source = result.source;
      stats.push(...result.stats);
    }
    return { source, stats };
  }
}
