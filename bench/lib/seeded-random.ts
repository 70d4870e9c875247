import { createCipheriv, createHash } from 'node:crypto';

/**
 * Deterministic randomness from a seed, so a tree (and every change made to it) is the same on every run and every
 * machine. Bytes come from AES-256-CTR over zeros (GB/s, so generating 5 GiB costs little next to writing it);
 * small numbers from sfc32.
 */
export class SeededRandom {
  readonly #key: Buffer;
  /** sfc32's state: fast enough to pick every word of a GiB of text. */
  readonly #s: Uint32Array;

  /** `label` derives an independent stream from the same seed (the tree, round 3's changes, …). */
  constructor(seed: string, label: string) {
    this.#key = createHash('sha256').update(`${seed}\0${label}`).digest();
    this.#s = new Uint32Array([this.#key.readUInt32LE(0), this.#key.readUInt32LE(4), this.#key.readUInt32LE(8), this.#key.readUInt32LE(12)]);
    for (let i = 0; i < 12; i++) this.next();
  }

  /** `length` random bytes; `stream` picks an independent, reproducible sequence (e.g. the index of a file). */
  bytes(length: number, stream: number): Buffer {
    const iv = Buffer.alloc(16);
    iv.writeUInt32BE(stream >>> 0, 0);
    return createCipheriv('aes-256-ctr', this.#key, iv).update(Buffer.alloc(length));
  }

  /** A uniform float in [0, 1). */
  next(): number {
    const s = this.#s;
    const t = (((s[0]! + s[1]!) >>> 0) + s[3]!) >>> 0;
    s[3] = (s[3]! + 1) >>> 0;
    s[0] = s[1]! ^ (s[1]! >>> 9);
    s[1] = (s[2]! + (s[2]! << 3)) >>> 0;
    s[2] = ((s[2]! << 21) | (s[2]! >>> 11)) >>> 0;
    s[2] = (s[2]! + t) >>> 0;
    return t / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
}
