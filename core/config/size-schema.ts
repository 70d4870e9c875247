import { z } from 'zod';

/** A size: `10GiB`, `512MiB`, `1.5TiB`, `100B`, or a number of bytes. Parsed to bytes. */
export const sizeSchema = z.union([z.number().int().nonnegative(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return value;
  const match = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)$/.exec(value.trim());
  if (!match) {
    ctx.issues.push({ code: 'custom', input: value, message: 'must be a size like 10GiB or 512MiB (or a number of bytes)' });
    return z.NEVER;
  }
  const factor = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 }[match[2] as 'B'];
  return Math.floor(Number(match[1]) * factor);
});
