import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compareKeys } from '../../../core/plugin-api.js';
import { inUtf8Order } from './utf8-order.js';

async function reordered(names: string[]): Promise<string[]> {
  async function* source() {
    yield* names;
  }
  const out: string[] = [];
  for await (const name of inUtf8Order(source(), (n) => n)) out.push(name);
  return out;
}

/** Names built from the characters where the two orders part: ASCII, U+E000–U+FFFF and above U+FFFF. */
const nameArb = fc
  .array(fc.constantFrom('a', 'b', '/', '-', '\u00e9', '\ue000', '\uff61', '\uffff', '\u{10000}', '\u{1f600}', '\u{10ffff}'), { minLength: 1, maxLength: 6 })
  .map((chars) => chars.join(''));
const utf16 = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

describe('inUtf8Order (Azure lists in UTF-16 order)', () => {
  it('turns any UTF-16-ordered listing into UTF-8 order, and leaves a UTF-8-ordered one as it is', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(nameArb, { maxLength: 60 }), async (names) => {
        const expected = [...names].sort(compareKeys);
        assert.deepEqual(await reordered([...names].sort(utf16)), expected);
        assert.deepEqual(await reordered(expected), expected);
      }),
      { numRuns: 500 },
    );
  });

  it('holds back only what a later name could still overtake', async () => {
    async function* source() {
      yield 'p/a';
      yield 'p/\u{1f600}';
      yield 'p/\uff61';
      yield 'q';
      // Never reached if the names before were released as soon as it was safe.
      throw new Error('listing failed after q');
    }
    const seen: string[] = [];
    await assert.rejects(async () => {
      for await (const name of inUtf8Order(source(), (n) => n)) seen.push(name);
    }, /listing failed after q/);
    assert.deepEqual(seen, ['p/a', 'p/\uff61', 'p/\u{1f600}', 'q']);
  });
});
