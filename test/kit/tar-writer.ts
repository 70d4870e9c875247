/**
 * Writes tar archives by hand — including ones GNU tar would never produce — to test what a restore accepts.
 * ustar headers (and pax `x` headers on request); enough for hostile-archive tests.
 */
export interface RawTarEntry {
  name: string;
  /**
   * '0' file, '1' hard link, '2' symlink, '3' char device, '4' block device, '5' folder, '6' fifo; anything else
   * (e.g. 'S' old GNU sparse, 'x' pax header) is written as given.
   */
  type?: '0' | '1' | '2' | '3' | '4' | '5' | '6' | (string & {});
  data?: Buffer | string;
  linkName?: string;
  mode?: number;
  /** The size to declare when it should differ from the data's length (the data is still written as given). */
  size?: number;
  /** The raw 12 bytes of the size field, for number formats GNU tar does not write. Overrides `size`. */
  sizeField?: Buffer;
  /** Pax records to put in an `x` header before this entry, written in canonical form. */
  pax?: Record<string, string>;
}

export function rawTar(entries: RawTarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    if (entry.pax) {
      const records = paxRecords(entry.pax);
      blocks.push(rawTarHeader({ name: `PaxHeaders/${entry.name}`.slice(0, 99), type: 'x' }, records.length), padded(records));
    }
    const data = Buffer.from(entry.data ?? '');
    blocks.push(rawTarHeader(entry, data.length), padded(data));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** One 512-byte ustar header with a valid checksum; the size field says `entry.size ?? dataLength`. */
export function rawTarHeader(entry: RawTarEntry, dataLength = 0): Buffer {
  const header = Buffer.alloc(512);
  header.write(entry.name, 0, 100, 'utf8');
  header.write(octal(entry.mode ?? (entry.type === '5' ? 0o755 : 0o644), 8), 100, 'latin1');
  header.write(octal(0, 8), 108, 'latin1');
  header.write(octal(0, 8), 116, 'latin1');
  if (entry.sizeField) entry.sizeField.copy(header, 124, 0, 12);
  else header.write(octal(entry.size ?? dataLength, 12), 124, 'latin1');
  header.write(octal(Math.floor(Date.now() / 1000), 12), 136, 'latin1');
  header.write('        ', 148, 'latin1');
  header.write(entry.type ?? '0', 156, 'latin1');
  header.write(entry.linkName ?? '', 157, 100, 'utf8');
  header.write('ustar\u000000', 257, 'latin1');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
  return header;
}

/** Pax records "<length> <key>=<value>\n", the length counting itself. */
export function paxRecords(records: Record<string, string>): Buffer {
  return Buffer.concat(
    Object.entries(records).map(([key, value]) => {
      const body = Buffer.byteLength(` ${key}=${value}\n`);
      let length = body + 1;
      while (String(length).length + body !== length) length++;
      return Buffer.from(`${length} ${key}=${value}\n`);
    }),
  );
}

/** `data` followed by zeros up to a whole number of 512-byte blocks. */
export function padded(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\u0000`;
}
