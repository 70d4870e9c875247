import { WsdError } from '../errors.js';
import type { ContentInitializer, InitializerLookup } from './content-initializer.js';

/** The enabled initializers by the kind they handle. */
export class InitializerRegistry implements InitializerLookup {
  readonly #byKind = new Map<string, ContentInitializer>();

  constructor(initializers: readonly ContentInitializer[]) {
    for (const initializer of initializers) {
      if (this.#byKind.has(initializer.kind)) {
        throw new WsdError('FAILED_PRECONDITION', `two initializer plugins handle kind "${initializer.kind}"`);
      }
      this.#byKind.set(initializer.kind, initializer);
    }
  }

  get(kind: string): ContentInitializer {
    const initializer = this.#byKind.get(kind);
    if (!initializer) {
      throw new WsdError('FAILED_PRECONDITION', `no initializer plugin for "${kind}" is enabled on this node (enabled: ${[...this.#byKind.keys()].join(', ') || 'none'})`, {
        field: 'initializer',
      });
    }
    return initializer;
  }

  kinds(): string[] {
    return [...this.#byKind.keys()];
  }
}
