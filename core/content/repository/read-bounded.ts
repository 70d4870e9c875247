import { WsdError } from '../../errors.js';
import type { StorageBackend } from '../../storage/storage-backend.js';

/** A whole object (or a range of one) into memory, refused with `DATA_LOSS` past `maxBytes`. */
export async function readBounded(storage: StorageBackend, key: string, maxBytes: number, signal?: AbortSignal, range?: { offset: number; length: number }): Promise<Buffer> {
  const { body } = await storage.get({ key, ...(signal ? { signal } : {}), ...(range ? { range } : {}) });
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const part of body) {
      size += (part as Buffer).length;
      if (size > maxBytes) throw new WsdError('DATA_LOSS', `${key} is larger than the ${maxBytes} bytes expected`);
      parts.push(part as Buffer);
    }
  } finally {
    body.destroy();
  }
  return Buffer.concat(parts, size);
}
