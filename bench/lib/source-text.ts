import type { SeededRandom } from './seeded-random.js';

const keywords = ['const', 'let', 'return', 'if', 'else', 'for', 'await', 'export', 'function', 'import', 'from', 'new', 'throw', 'case'];
const punctuation = ['(', ')', ' = ', ', ', '.', ' => ', ' + ', '[', ']', ' === ', ': ', ';'];

/**
 * Source-code-like text: lines of keywords, identifiers from a seeded vocabulary and punctuation. It compresses
 * about as well as real code (zstd -1: ~3-4×), and every call produces different text, so no two files or blocks
 * repeat each other — a deduplicating store gets no free wins a real tree would not give it.
 */
export class SourceText {
  readonly #words: string[];

  constructor(random: SeededRandom) {
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    this.#words = Array.from({ length: 4000 }, (_, i) => {
      let word = '';
      const length = random.int(3, 12);
      for (let j = 0; j < length; j++) word += letters[random.int(0, 25)];
      return i % 3 === 0 ? word[0]!.toUpperCase() + word.slice(1) : word;
    });
  }

  /** About `bytes` bytes of text (exactly `bytes`: cut or padded with newlines). */
  generate(random: SeededRandom, bytes: number): Buffer {
    const lines: string[] = [];
    let length = 0;
    while (length < bytes) {
      let line = '  '.repeat(random.int(0, 4));
      const tokens = random.int(3, 12);
      for (let t = 0; t < tokens; t++) {
        const r = random.next();
        line += r < 0.2 ? `${random.pick(keywords)} ` : r < 0.75 ? random.pick(this.#words) : random.pick(punctuation);
      }
      if (random.next() < 0.1) line += ` // ${random.pick(this.#words)} ${random.int(0, 9999)}`;
      line += '\n';
      lines.push(line);
      length += line.length;
    }
    const text = Buffer.from(lines.join(''), 'latin1');
    return text.length === bytes ? text : Buffer.concat([text.subarray(0, bytes), Buffer.alloc(Math.max(0, bytes - text.length), '\n')]);
  }
}
