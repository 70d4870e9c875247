import { compareKeys } from '../../../core/plugin-api.js';

/**
 * Yields the items of `source`, which arrive sorted by name in UTF-16 code-unit order, in UTF-8 byte order instead.
 *
 * Azure lists blob names in UTF-16 order (Azurite too, measured; for Azure itself reported by blobfile's maintainers,
 * who wrote a blob per Unicode character), while the storage contract promises UTF-8 order. The two orders differ in
 * one way only: at the first code unit where two names differ, a surrogate (a character above U+FFFF) sorts before
 * U+E000–U+FFFF in UTF-16 and after them in UTF-8. So a name whose first surrogate is at index i can still be
 * overtaken only by a name that shares its first i code units, and such a name can still arrive only while the
 * last name read shares them too. Items are held back until then: nothing at all for names without characters
 * above U+FFFF (the usual case), and in the worst case — many such names right after a common start — until the
 * listing ends. Input already in UTF-8 order passes through in the same order.
 */
export async function* inUtf8Order<T>(source: AsyncIterable<T>, nameOf: (item: T) => string): AsyncGenerator<T> {
  /** Held items, in UTF-8 order. */
  const held: { item: T; name: string; overtakable: string | undefined }[] = [];
  for await (const item of source) {
    const name = nameOf(item);
    const entry = { item, name, overtakable: overtakablePrefix(name) };
    let at = held.length;
    while (at > 0 && compareKeys(held[at - 1]!.name, name) > 0) at--;
    held.splice(at, 0, entry);
    while (held.length > 0 && (held[0]!.overtakable === undefined || !name.startsWith(held[0]!.overtakable))) yield held.shift()!.item;
  }
  for (const entry of held) yield entry.item;
}

/** The start of `name` up to its first surrogate, or undefined when it has none (no later name can overtake it). */
function overtakablePrefix(name: string): string | undefined {
  const index = name.search(/[\uD800-\uDFFF]/);
  return index < 0 ? undefined : name.slice(0, index);
}
