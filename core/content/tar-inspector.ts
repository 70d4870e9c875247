import { Transform, type TransformCallback } from 'node:stream';
import { WsdError } from '../errors.js';

export interface TarInspectorOptions {
  /** Let character/block devices and fifos through (default: refused). */
  allowSpecialFiles?: boolean;
}

const block = 512;

/**
 * Reads a tar stream on its way to GNU tar and stops it — before tar writes anything for that member — when a
 * member could write outside the extraction folder or create something a workspace must not hold:
 * absolute paths, `..` segments, hard links to such paths, members below a symlink of the same archive (the
 * "write through a symlink" attack; tar never produces those for a real tree), devices and fifos.
 *
 * Understands ustar, GNU (long names `L`/`K`) and pax (`x` records for path, linkpath, size, sparse names) headers.
 * The stream fails with `DATA_LOSS` naming the member; bytes pass through unchanged otherwise.
 */
export class TarInspector extends Transform {
  /** Real members seen (files, folders, links; not meta headers). */
  members = 0;
  readonly #options: TarInspectorOptions;
  #pending = Buffer.alloc(0);
  /** Bytes of member data (with padding) still to pass before the next header. */
  #skip = 0;
  #ended = false;
  #longName: string | undefined;
  #longLink: string | undefined;
  #pax: Record<string, string> = {};
  #global: Record<string, string> = {};
  #collect: { type: string; size: number; chunks: Buffer[]; got: number } | undefined;
  readonly #symlinks = new Set<string>();

  constructor(options: TarInspectorOptions = {}) {
    super();
    this.#options = options;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#inspect(chunk);
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (!this.#ended && (this.#skip > 0 || this.#pending.length > 0 || this.#collect)) {
      callback(new WsdError('DATA_LOSS', 'archive is truncated (the tar stream ends inside a member)'));
      return;
    }
    callback();
  }

  #inspect(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && !this.#ended) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - offset);
        if (this.#collect) this.#gather(chunk.subarray(offset, offset + n));
        this.#skip -= n;
        offset += n;
        continue;
      }
      const need = block - this.#pending.length;
      const take = Math.min(need, chunk.length - offset);
      this.#pending = Buffer.concat([this.#pending, chunk.subarray(offset, offset + take)]);
      offset += take;
      if (this.#pending.length === block) {
        const header = this.#pending;
        this.#pending = Buffer.alloc(0);
        this.#header(header);
      }
    }
  }

  #gather(data: Buffer): void {
    const c = this.#collect!;
    const useful = data.subarray(0, Math.max(0, c.size - c.got));
    c.chunks.push(useful);
    c.got += data.length;
    if (c.got >= c.size) {
      const body = Buffer.concat(c.chunks);
      if (c.type === 'x') this.#pax = parsePax(body);
      else if (c.type === 'g') this.#global = { ...this.#global, ...parsePax(body) };
      else if (c.type === 'L') this.#longName = cString(body);
      else if (c.type === 'K') this.#longLink = cString(body);
      this.#collect = undefined;
    }
  }

  #header(header: Buffer): void {
    if (header.every((b) => b === 0)) {
      // End of archive (two zero blocks; one is enough to stop inspecting: tar reads no further members).
      this.#ended = true;
      return;
    }
    if (!checksumOk(header)) throw new WsdError('DATA_LOSS', 'archive is corrupt: bad tar header checksum');
    const type = String.fromCharCode(header[156]!) || '0';
    const size = parseNumber(header.subarray(124, 136));
    const dataBlocks = Math.ceil(size / block) * block;

    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      if (size > 1024 * 1024) throw new WsdError('DATA_LOSS', `archive has an implausible ${type} header of ${size} bytes`);
      this.#skip = dataBlocks;
      this.#collect = { type, size, chunks: [], got: 0 };
      if (size === 0) this.#gather(Buffer.alloc(0));
      return;
    }

    const pax = { ...this.#global, ...this.#pax };
    const prefix = cString(header.subarray(345, 500));
    const ustarName = header.subarray(257, 263).toString('latin1') === 'ustar\u0000' && prefix ? `${prefix}/${cString(header.subarray(0, 100))}` : cString(header.subarray(0, 100));
    const name = pax['GNU.sparse.name'] ?? pax.path ?? this.#longName ?? ustarName;
    const linkName = pax.linkpath ?? this.#longLink ?? cString(header.subarray(157, 257));
    const dataSize = pax.size !== undefined && type !== 'S' ? Number(pax.size) : size;
    this.#pax = {};
    this.#longName = undefined;
    this.#longLink = undefined;

    const path = normalize(name);
    const refuse = (why: string) => {
      throw new WsdError('DATA_LOSS', `archive member ${JSON.stringify(name)} refused: ${why}`);
    };
    if (name.startsWith('/')) refuse('absolute path');
    if (path.split('/').includes('..')) refuse('".." in its path');
    for (const link of this.#symlinks) {
      if (path.startsWith(`${link}/`)) refuse(`it would be written through the symlink ${JSON.stringify(link)}`);
    }
    if (type === '1') {
      const target = normalize(linkName);
      if (linkName.startsWith('/') || target.split('/').includes('..')) refuse(`hard link to ${JSON.stringify(linkName)} outside the folder`);
      for (const link of this.#symlinks) {
        if (target.startsWith(`${link}/`)) refuse(`hard link through the symlink ${JSON.stringify(link)}`);
      }
      // A hard link to a symlink is one more symlink to write through.
      if (this.#symlinks.has(target)) this.#symlinks.add(path);
    } else if (type === '2') {
      this.#symlinks.add(path);
    } else if ((type === '3' || type === '4' || type === '6') && !this.#options.allowSpecialFiles) {
      refuse(type === '6' ? 'fifo' : 'device node');
    }
    this.members++;
    // Links, folders and specials carry no data, whatever their size field says.
    this.#skip = type === '1' || type === '2' || type === '5' || type === '3' || type === '4' || type === '6' ? 0 : Math.ceil(dataSize / block) * block;
  }
}

function normalize(name: string): string {
  return name.split('/').filter((s) => s !== '' && s !== '.').join('/');
}

function cString(buffer: Buffer): string {
  const end = buffer.indexOf(0);
  return buffer.subarray(0, end === -1 ? buffer.length : end).toString('utf8');
}

/** Octal ASCII, or GNU base-256 when the high bit of the first byte is set. */
function parseNumber(field: Buffer): number {
  if (field[0]! & 0x80) {
    let value = field[0]! & 0x7f;
    for (const byte of field.subarray(1)) value = value * 256 + byte;
    return value;
  }
  const text = cString(field).trim();
  return text ? parseInt(text, 8) : 0;
}

function checksumOk(header: Buffer): boolean {
  const stored = parseNumber(header.subarray(148, 156));
  let sum = 0;
  for (let i = 0; i < block; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
  return sum === stored;
}

/** Pax records: "<length> <key>=<value>\n", length counting the whole record. */
function parsePax(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let offset = 0;
  while (offset < body.length) {
    const space = body.indexOf(0x20, offset);
    if (space === -1) break;
    const length = parseInt(body.subarray(offset, space).toString('latin1'), 10);
    if (!Number.isFinite(length) || length <= 0) break;
    const record = body.subarray(space + 1, offset + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    offset += length;
  }
  return out;
}
