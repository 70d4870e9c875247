import { isWsdError, WsdError, type CompositeSpec, type ContentInitializer, type ContentSource, type InitializeOptions, type InitializeResult, type InitializerLookup } from '../../../core/plugin-api.js';

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
    const warnings: string[] = [];
    for (const [index, child] of children.entries()) {
      const field = `initializer.composite.initializer[${index}]`;
      const kind = child?.kind;
      if (!kind) throw new WsdError('INVALID_ARGUMENT', `${field} has no initializer set`, { field });
      options.signal.throwIfAborted();
      let result: InitializeResult;
      try {
        result = await options.initializers.get(kind).initialize({ ...options, spec: child.spec ?? {} });
      } catch (error) {
        if (isWsdError(error)) throw new WsdError(error.code, `${field} (${kind}): ${error.message}`, { cause: error, field: error.field ?? field });
        throw error;
      }
      if (sourceRank[result.source] > sourceRank[source]) source = result.source;
      stats.push(...result.stats);
      warnings.push(...(result.warnings ?? []));
    }
    return { source, stats, ...(warnings.length ? { warnings } : {}) };
  }

  redact(spec: CompositeSpec, initializers: InitializerLookup): CompositeSpec {
    return { initializer: (spec.initializer ?? []).map((child) => ({ kind: child.kind, spec: childOf(child.kind, initializers)?.redact?.(child.spec, initializers) ?? child.spec })) };
  }

  checkoutLocations(spec: CompositeSpec, initializers: InitializerLookup): string[] {
    return (spec.initializer ?? []).flatMap((child) => childOf(child.kind, initializers)?.checkoutLocations?.(child.spec, initializers) ?? []);
  }
}

/** A child's initializer, or undefined when its kind is not enabled (a record persisted before it was disabled). */
function childOf(kind: string, initializers: InitializerLookup): ContentInitializer | undefined {
  try {
    return initializers.get(kind);
  } catch {
    return undefined;
  }
}
