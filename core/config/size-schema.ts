import { z } from 'zod';
import { parseSizeBytes } from './units.js';

/** A size: `10GiB`, `512MiB`, `1.5TiB`, `100B`, or a number of bytes. Parsed to bytes. */
export const sizeSchema = z.union([z.number().int().nonnegative(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return value;
  const bytes = parseSizeBytes(value);
  if (bytes === undefined) {
    ctx.issues.push({ code: 'custom', input: value, message: 'must be a size like 10GiB or 512MiB (or a number of bytes)' });
    return z.NEVER;
  }
  return bytes;
});
