/**
 * A typed injection token. The kernel registers services and plugin instances against tokens in its own tsyringe
 * child container; everything else only ever names tokens, never the container.
 *
 * `id` is a versioned, human-readable string (`wsd.storage.v1`): it appears in error messages and in `requires`
 * failures, so it must say what the service is.
 */
export interface Token<T> {
  readonly id: string;
  /** The key used inside the DI container; unique per token even when two tokens share an id by mistake. */
  readonly key: symbol;
  /** `true` when many providers may exist at once (initializers, health checks); resolving yields them all. */
  readonly multiple: boolean;
  /** Phantom field so `Token<A>` and `Token<B>` are distinct types; never set at run time. */
  readonly __type?: T;
}

/** The service type a token stands for. */
export type TokenType<K> = K extends Token<infer T> ? T : never;

/** What resolving a token yields: the service, or for a multi-provider token every provider in start order. */
export type Resolved<K> = K extends Token<infer T> ? (K extends { multiple: true } ? T[] : T) : never;

export function createToken<T>(id: string): Token<T> & { multiple: false };
export function createToken<T>(id: string, options: { multiple: true }): Token<T> & { multiple: true };
export function createToken<T>(id: string, options: { multiple?: boolean } = {}): Token<T> {
  if (!/^[a-z][a-z0-9-]*(\.[a-z0-9-]+)*\.v\d+$/.test(id)) {
    throw new TypeError(`token id "${id}" must be dotted lower-case with a version suffix, e.g. "wsd.storage.v1"`);
  }
  return Object.freeze({ id, key: Symbol(id), multiple: options.multiple === true });
}
