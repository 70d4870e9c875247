/**
 * Writes tar archives by hand — including ones GNU tar would never produce — to test what a restore accepts.
 * ustar headers only; enough for hostile-archive tests.
 */
export interface RawTarEntry {
  name: string;
  /** '0' file, '1' hard link, '2' symlink, '3' char device, '4' block device, '5' folder, '6' fifo. */
  type?: '0' | '1' | '2' | '3' | '4' | '5' | '6';
  data?: Buffer | string;
  linkName?: string;
  mode?: number;
}

export function rawTar(entries: RawTarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const data = Buffer.from(entry.data ?? '');
    const header = Buffer.alloc(512);
    header.write(entry.name, 0, 100, 'utf8');
    header.write(octal(entry.mode ?? (entry.type === '5' ? 0o755 : 0o644), 8), 100, 'latin1');
    header.write(octal(0, 8), 108, 'latin1');
    header.write(octal(0, 8), 116, 'latin1');
    header.write(octal(data.length, 12), 124, 'latin1');
    header.write(octal(Math.floor(Date.now() / 1000), 12), 136, 'latin1');
    header.write('        ', 148, 'latin1');
    header.write(entry.type ?? '0', 156, 'latin1');
    header.write(entry.linkName ?? '', 157, 100, 'utf8');
    header.write('ustar\u000000', 257, 'latin1');
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\u0000`;
}
