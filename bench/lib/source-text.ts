import type { SeededRandom } from './seeded-random.js';

const keywords = ['const', 'let', 'return', 'if', 'else', 'for', 'await', 'export', 'function', 'import', 'from', 'new', 'throw', 'case'];
const punctuation = ['(', ')', ' = ', ', ', '.', ' => ', ' + ', '[', ']', ' === ', ': ', ';', ' {', '}'];

/**
 * Source-code-like text: lines of keywords, identifiers from a seeded vocabulary and punctuation. Most lines come
 * from a pool of common lines (real code repeats itself: imports, braces, calls), one in sixteen is new; lines follow
 * each other at random, so no two files or 1 MiB blocks share a long run — a deduplicating store gets no free wins
 * a real tree would not give it — while zstd -1 compresses the text about as well as code (~3×).
 */
export class SourceText {
  readonly #words: string[];
  readonly #pool: string[];

  constructor(random: SeededRandom) {
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    this.#words = Array.from({ length: 3000 }, (_, i) => {
      let word = '';
      const length = random.int(3, 12);
      for (let j = 0; j < length; j++) word += letters[random.int(0, 25)];
      return i % 3 === 0 ? word[0]!.toUpperCase() + word.slice(1) : word;
    });
    this.#pool = Array.from({ length: 20_000 }, () => this.#line(random));
  }

  /** Exactly `bytes` bytes of text. */
  generate(random: SeededRandom, bytes: number): Buffer {
    const lines: string[] = [];
    let length = 0;
    while (length < bytes) {
      const line = random.next() < 0.0625 ? this.#line(random) : this.#pool[Math.floor(this.#pool.length * random.next() ** 3)]!;
      lines.push(line);
      length += line.length;
    }
    return Buffer.from(lines.join(''), 'latin1').subarray(0, bytes);
  }

  #line(random: SeededRandom): string {
    let line = '  '.repeat(random.int(0, 4));
    const tokens = random.int(2, 10);
    for (let t = 0; t < tokens; t++) {
      const r = random.next();
      line += r < 0.2 ? `${random.pick(keywords)} ` : r < 0.7 ? this.#word(random) : random.pick(punctuation);
    }
    if (random.next() < 0.1) line += ` // ${this.#word(random)} ${this.#word(random)} ${random.int(0, 99)}`;
    return `${line}\n`;
  }

  /** Identifiers are skewed as in real code: a few are everywhere, most are rare. */
  #word(random: SeededRandom): string {
    return this.#words[Math.floor(this.#words.length * random.next() ** 3)]!;
  }
}
