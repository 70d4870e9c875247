import { Transform, type TransformCallback } from 'node:stream';
import { WsdError } from '../errors.js';

export interface TarInspectorOptions {
  /** Let character/block devices and fifos through (default: refused). */
  allowSpecialFiles?: boolean;
  /**
   * The most bytes the tar stream may hold, headers, padding and the end-of-archive blocks included: for a backup,
   * the `bytesUncompressed` its manifest records (GNU tar's `--totals`, which counts the stream up to its last record).
   * The stream fails with `DATA_LOSS` as soon as a header declares a member whose data would end past the limit (before
   * that header is passed on, so tar never starts writing the member) or as soon as more bytes arrive. Unset: no limit.
   * Pass it only when the figure is known: 0 refuses every archive.
   */
  maxStreamBytes?: number;
  /**
   * The most bytes of member data the archive may hold in total: each member's data as stored (for a sparse file its
   * map and data, not its apparent size). A member that would go past it fails the stream with `RESOURCE_EXHAUSTED`
   * before its header is passed on. Meant for the workspace disk quota. Unset: no limit.
   */
  maxDataBytes?: number;
  /** Says what `maxDataBytes` is, for the error message (e.g. "the workspace quota of 10 GiB"). */
  dataLimitReason?: string;
  /**
   * Keep the setuid and setgid bits of files (default false: they are cleared in the header before tar sees it, so
   * a restore running as root cannot create a setuid-root program). Folders keep setgid either way: on a folder it
   * only makes new entries inherit the folder's group.
   */
  preserveSetuid?: boolean;
}

const block = 512;
/** GNU tar pads its stream with zeros to a whole record (20 blocks by default) after the end-of-archive blocks. */
const record = 20 * block;
/** Types that tar extracts without reading data, whatever the size field says (hard link, symlink, devices, folder, fifo). */
const dataless = new Set(['1', '2', '3', '4', '5', '6']);
/** The pax keywords of GNU's sparse format 1.0, the one `tar --format=posix --sparse` writes. */
const sparse10Keys = new Set(['GNU.sparse.major', 'GNU.sparse.minor', 'GNU.sparse.name', 'GNU.sparse.realsize']);

/**
 * Reads a tar stream on its way to GNU tar and stops it — before tar writes anything for that member — when a
 * member could write outside the extraction folder or create something a workspace must not hold:
 * absolute paths, `..` segments, hard links to such paths, members below a symlink of the same archive (the
 * "write through a symlink" attack; tar never produces those for a real tree), devices and fifos. It also bounds the
 * stream and its data (`maxStreamBytes`, `maxDataBytes`: a decompression bomb stops early) and clears setuid/setgid
 * bits of files (unless `preserveSetuid`).
 *
 * Understands ustar, GNU (long names `L`/`K`) and pax (`x`/`g` records for path, linkpath, size, GNU sparse 1.0)
 * headers. The inspector is only as good as its agreement with GNU tar on where each header starts: wherever tar
 * could frame the stream differently (unusual number fields, malformed pax records, old GNU or pax 0.x sparse
 * members, sparse maps that do not add up to the stored size, data on a link or device), the stream fails with
 * `DATA_LOSS` rather than guess; GNU tar writes none of those.
 *
 * Output bytes equal input bytes except the mode and checksum fields of headers whose setuid/setgid bits were
 * cleared. Data passes through as views of the input chunks; only a header split across chunks is copied.
 */
export class TarInspector extends Transform {
  /** Real members seen (files, folders, links; not meta headers). */
  members = 0;
  readonly #options: TarInspectorOptions;
  #bytes = 0;
  #data = 0;
  /** A header split across chunks: its bytes are held back until it is complete (it may be refused or rewritten). */
  #header = Buffer.allocUnsafe(block);
  #headerFill = 0;
  /** Bytes of member data (with padding) still to pass before the next header. */
  #skip = 0;
  /** Stream offset of the end-of-archive block, once seen. */
  #endAt: number | undefined;
  #longName: string | undefined;
  #longLink: string | undefined;
  #pax: Record<string, string> = {};
  #global: Record<string, string> = {};
  #hasGlobal = false;
  #collect: { type: string; size: number; chunks: Buffer[]; got: number } | undefined;
  #sparseMap: SparseMapReader | undefined;
  readonly #symlinks = new Set<string>();

  constructor(options: TarInspectorOptions = {}) {
    super();
    for (const key of ['maxStreamBytes', 'maxDataBytes'] as const) {
      const value = options[key];
      if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
        throw new WsdError('INVALID_ARGUMENT', `${key} must be a whole number of bytes, got ${value}`, { field: key });
      }
    }
    this.#options = options;
  }

  /** Bytes of the tar stream read so far (headers, data, padding and anything after the end of the archive). */
  /** Whether the end-of-archive block has passed: tar may stop reading (and exit) from here on. */
  get reachedEnd(): boolean {
    return this.#endAt !== undefined;
  }

  get bytesProcessed(): number {
    return this.#bytes;
  }

  /** Bytes of member data let through so far, counted as `maxDataBytes` counts them. */
  get dataBytes(): number {
    return this.#data;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      const start = this.#bytes;
      this.#bytes += chunk.length;
      const max = this.#options.maxStreamBytes;
      if (max !== undefined && this.#bytes > max) throw tooLong(max, `${this.#bytes} bytes arrived`);
      this.#process(chunk, start);
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.#endAt === undefined && (this.#skip > 0 || this.#headerFill > 0 || this.#collect || this.#sparseMap)) {
      callback(new WsdError('DATA_LOSS', 'archive is truncated (the tar stream ends inside a member)'));
      return;
    }
    callback();
  }

  /**
   * Passes `chunk` (at stream offset `start`) on in runs: data and whole headers that stay as they are go out as one
   * view of the chunk; a rewritten header, or one completed from an earlier chunk, goes out on its own.
   */
  #process(chunk: Buffer, start: number): void {
    const length = chunk.length;
    let offset = 0;
    let run = 0; // chunk[run, offset) is inspected and passes unchanged
    while (offset < length) {
      if (this.#endAt !== undefined) {
        // tar reads nothing after the end-of-archive block but the rest of its record; drop the rest (still counted).
        const keep = Math.min(length, Math.max(offset, this.#endAt + record - start));
        if (keep > run) this.push(chunk.subarray(run, keep));
        return;
      }
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, length - offset);
        if (this.#collect) this.#gather(chunk.subarray(offset, offset + n));
        else if (this.#sparseMap) this.#readSparseMap(chunk, offset, offset + n);
        this.#skip -= n;
        offset += n;
        if (this.#skip === 0 && this.#sparseMap) this.#sparseMap.incomplete();
        continue;
      }
      if (this.#headerFill === 0 && length - offset >= block) {
        const rewritten = this.#inspectHeader(chunk.subarray(offset, offset + block), start + offset + block, false);
        if (rewritten) {
          if (offset > run) this.push(chunk.subarray(run, offset));
          this.push(rewritten);
          run = offset + block;
        }
        offset += block;
        continue;
      }
      if (offset > run) this.push(chunk.subarray(run, offset));
      const n = Math.min(block - this.#headerFill, length - offset);
      chunk.copy(this.#header, this.#headerFill, offset, offset + n);
      this.#headerFill += n;
      offset += n;
      run = offset;
      if (this.#headerFill === block) {
        const header = this.#header;
        this.#header = Buffer.allocUnsafe(block);
        this.#headerFill = 0;
        this.push(this.#inspectHeader(header, start + offset, true) ?? header);
      }
    }
    if (length > run) this.push(run === 0 ? chunk : chunk.subarray(run));
  }

  #gather(data: Buffer): void {
    const c = this.#collect!;
    const useful = data.subarray(0, Math.max(0, c.size - c.got));
    c.chunks.push(useful);
    c.got += data.length;
    if (c.got >= c.size) {
      const body = Buffer.concat(c.chunks);
      if (c.type === 'x') this.#pax = parsePax(body);
      else if (c.type === 'g') {
        const global = parsePax(body);
        if (Object.keys(global).some((k) => k.startsWith('GNU.sparse.'))) {
          throw new WsdError('DATA_LOSS', 'archive refused: sparse-file keywords in a global pax header');
        }
        this.#global = { ...this.#global, ...global };
        this.#hasGlobal = Object.keys(this.#global).length > 0;
      } else if (c.type === 'L') this.#longName = cString(body, 0, body.length);
      else if (c.type === 'K') this.#longLink = cString(body, 0, body.length);
      this.#collect = undefined;
    }
  }

  #readSparseMap(chunk: Buffer, from: number, to: number): void {
    const map = this.#sparseMap!;
    if (map.read(chunk, from, to)) this.#sparseMap = undefined;
  }

  /**
   * Checks one complete header that ends at stream offset `end`. Returns the header to pass on when it had to be
   * rewritten (a copy unless `owned`), otherwise undefined. Throws to refuse.
   */
  #inspectHeader(header: Buffer, end: number, owned: boolean): Buffer | undefined {
    let sum = blockSum(header);
    if (sum === 0) {
      // End of archive (two zero blocks; the first is enough: GNU tar reads no member after it).
      this.#endAt = end - block;
      return undefined;
    }
    const stored = readNumber(header, 148, 8, false);
    for (let i = 148; i < 156; i++) sum += 32 - header[i]!;
    if (stored !== sum) throw new WsdError('DATA_LOSS', 'archive is corrupt: bad tar header checksum');
    const typeByte = header[156]!;
    const type = typeByte === 0 ? '0' : String.fromCharCode(typeByte);
    const size = readNumber(header, 124, 12, true);
    // GNU tar cannot read such a size either: it would skip ahead looking for a header, somewhere we did not look.
    if (size === undefined) throw new WsdError('DATA_LOSS', 'archive is corrupt: unreadable size in a tar header');

    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      if (size > 1024 * 1024) throw new WsdError('DATA_LOSS', `archive has an implausible ${type} header of ${size} bytes`);
      this.#checkStreamLimit(end + padded(size), type, undefined);
      this.#skip = padded(size);
      this.#collect = { type, size, chunks: [], got: 0 };
      if (size === 0) this.#gather(Buffer.alloc(0));
      return undefined;
    }

    const pax = this.#hasGlobal ? { ...this.#global, ...this.#pax } : this.#pax;
    const name = pax['GNU.sparse.name'] ?? pax.path ?? this.#longName ?? ustarName(header);
    const linkName = pax.linkpath ?? this.#longLink ?? cString(header, 157, 100);
    const dataSize = pax.size !== undefined ? decimal(pax.size, 'size') : size;
    this.#pax = {};
    this.#longName = undefined;
    this.#longLink = undefined;

    const path = normalize(name);
    const refuse = (why: string): never => {
      throw new WsdError('DATA_LOSS', `archive member ${JSON.stringify(name)} refused: ${why}`);
    };
    if (name === '') refuse('empty name (tar would skip it, reading its size as data)');
    if (name.startsWith('/')) refuse('absolute path');
    if (path.includes('..') && path.split('/').includes('..')) refuse('".." in its path');
    const via = this.#symlinkAncestor(path);
    if (via !== undefined) refuse(`it would be written through the symlink ${JSON.stringify(via)}`);
    if (type === '1') {
      const target = normalize(linkName);
      if (linkName.startsWith('/') || (target.includes('..') && target.split('/').includes('..'))) refuse(`hard link to ${JSON.stringify(linkName)} outside the folder`);
      const through = this.#symlinkAncestor(target);
      if (through !== undefined) refuse(`hard link through the symlink ${JSON.stringify(through)}`);
      // A hard link to a symlink is one more symlink to write through.
      if (this.#symlinks.has(target)) this.#symlinks.add(path);
    } else if (type === '2') {
      this.#symlinks.add(path);
    } else if ((type === '3' || type === '4' || type === '6') && !this.#options.allowSpecialFiles) {
      refuse(type === '6' ? 'fifo' : 'device node');
    }

    // Where does tar think this member's data ends? Refuse wherever that is not plainly the size field.
    if (type === 'S') refuse('old GNU sparse member (wsd archives use the pax sparse format)');
    if (type === 'X') refuse('Solaris extended header');
    const regular = type === '0' || type === '7';
    const sparse = Object.keys(pax).some((k) => k.startsWith('GNU.sparse.'));
    if (dataless.has(type) && type !== '5' && dataSize !== 0) refuse(`a ${typeName(type)} with ${dataSize} bytes of data`);
    // BSD convention, which GNU tar follows: a "file" whose name ends in "/" is a folder, and its data is not read.
    const folderLike = type === '5' || type === 'D' || (regular && name.endsWith('/'));
    if (regular && name.endsWith('/') && (dataSize !== 0 || sparse)) refuse('a file with a folder name and data');
    if (sparse) {
      if (!regular) refuse(`sparse-file keywords on a ${typeName(type)}`);
      const unknown = Object.keys(pax).find((k) => k.startsWith('GNU.sparse.') && !sparse10Keys.has(k));
      if (unknown !== undefined || pax['GNU.sparse.major'] !== '1' || pax['GNU.sparse.minor'] !== '0' || pax['GNU.sparse.realsize'] === undefined) {
        refuse('sparse file in a format other than GNU pax sparse 1.0');
      }
      if (dataSize === 0) refuse('sparse file without a sparse map');
    }
    const hasData = !dataless.has(type) && !(regular && name.endsWith('/'));
    const memberData = hasData ? dataSize : 0;

    this.#checkStreamLimit(end + padded(memberData), undefined, name);
    const maxData = this.#options.maxDataBytes;
    if (maxData !== undefined && this.#data + memberData > maxData) {
      const reason = this.#options.dataLimitReason ?? 'the data limit';
      throw new WsdError(
        'RESOURCE_EXHAUSTED',
        `archive holds more than ${maxData} bytes of file data (${reason}): member ${JSON.stringify(name)} of ${memberData} bytes would bring it to ${this.#data + memberData}`,
      );
    }

    let out: Buffer | undefined;
    if (!this.#options.preserveSetuid && !folderLike) {
      const digit = setuidDigit(header);
      if (digit === undefined) refuse('unreadable mode');
      if (digit !== -1) {
        out = owned ? header : Buffer.from(header);
        out[digit!] = 0x30 + ((out[digit!]! - 0x30) & 1); // keep the sticky bit, clear setuid (4) and setgid (2)
        writeChecksum(out);
      }
    }

    this.members++;
    this.#data += memberData;
    this.#skip = padded(memberData);
    if (sparse) this.#sparseMap = new SparseMapReader(name, dataSize, decimal(pax['GNU.sparse.realsize']!, 'GNU.sparse.realsize'));
    return out;
  }

  /** Refuses a header whose data would end past `maxStreamBytes` (message built only then: this runs per header). */
  #checkStreamLimit(end: number, metaType: string | undefined, name: string | undefined): void {
    const max = this.#options.maxStreamBytes;
    if (max === undefined || end <= max) return;
    throw tooLong(max, `${metaType ? `a ${metaType} header` : `member ${JSON.stringify(name)}`} would end at byte ${end}`);
  }

  /** The first ancestor of `path` that is a symlink of this archive (a look-up per ancestor, not per symlink). */
  #symlinkAncestor(path: string): string | undefined {
    if (this.#symlinks.size === 0) return undefined;
    for (let slash = path.indexOf('/'); slash !== -1; slash = path.indexOf('/', slash + 1)) {
      const ancestor = path.slice(0, slash);
      if (this.#symlinks.has(ancestor)) return ancestor;
    }
    return undefined;
  }
}

function tooLong(max: number, detail: string): WsdError {
  return new WsdError('DATA_LOSS', `archive expands past the ${max} bytes its manifest records (${detail})`);
}

function padded(size: number): number {
  return Math.ceil(size / block) * block;
}

function typeName(type: string): string {
  return { '1': 'hard link', '2': 'symlink', '3': 'device node', '4': 'device node', '5': 'folder', '6': 'fifo' }[type] ?? `member of type ${JSON.stringify(type)}`;
}

function normalize(name: string): string {
  return name.split('/').filter((s) => s !== '' && s !== '.').join('/');
}

/** The text of `buffer[start, start + length)` up to its first NUL. */
function cString(buffer: Buffer, start: number, length: number): string {
  let end = start;
  while (end < start + length && buffer[end] !== 0) end++;
  return buffer.toString('utf8', start, end);
}

/** The member name in a ustar header: its name field, after the prefix field when the header is POSIX ustar. */
function ustarName(header: Buffer): string {
  const name = cString(header, 0, 100);
  if (header[345] === 0 || header.toString('latin1', 257, 263) !== 'ustar\u0000') return name;
  return `${cString(header, 345, 155)}/${name}`;
}

/** The sum of a block's bytes, four at a time (this runs for every header of a restore). */
function blockSum(header: Buffer): number {
  const view = new DataView(header.buffer, header.byteOffset, block);
  let lanes = 0; // two 16-bit lanes, each summing every other byte: at most 128 * 510 each, so no carry between them
  for (let i = 0; i < block; i += 4) {
    const word = view.getUint32(i, true);
    lanes += (word & 0x00ff00ff) + ((word >>> 8) & 0x00ff00ff);
  }
  return (lanes & 0xffff) + Math.floor(lanes / 0x10000);
}

/** C's isspace, which GNU tar uses around numbers. */
function isBlank(byte: number): boolean {
  return byte === 0x20 || (byte >= 0x09 && byte <= 0x0d);
}

/**
 * A number field read the way GNU tar reads it (list.c `from_header`): an optional NUL (old tars wrote one when the
 * previous field overflowed), blanks, octal digits ended by the field's end, a NUL or a blank; or, with `base256`,
 * GNU's base-256 (first byte 0x80). Undefined for anything else — base-64, negative base-256, stray characters —
 * which GNU tar either reads differently or refuses by skipping to the next header it recognises.
 */
function readNumber(header: Buffer, start: number, length: number, base256: boolean): number | undefined {
  const end = start + length;
  if (base256 && header[start] === 0x80) {
    let value = 0;
    for (let i = start + 1; i < end; i++) value = value * 256 + header[i]!;
    return Number.isSafeInteger(value) ? value : undefined;
  }
  let i = start;
  if (header[i] === 0) i++;
  while (i < end && isBlank(header[i]!)) i++;
  if (i === end) return undefined;
  let value = 0;
  for (; i < end && header[i]! >= 0x30 && header[i]! <= 0x37; i++) value = value * 8 + header[i]! - 0x30;
  if (i < end && header[i] !== 0 && !isBlank(header[i]!)) return undefined;
  return value;
}

/**
 * Where the octal digit holding the setuid/setgid/sticky bits sits in the mode field (offset 100, 8 bytes): -1 when
 * neither setuid nor setgid is set, undefined when the field is not plain octal (GNU tar never writes base-256 modes).
 */
function setuidDigit(header: Buffer): number | undefined {
  if (readNumber(header, 100, 8, false) === undefined) return undefined;
  let i = 100;
  if (header[i] === 0) i++;
  while (i < 108 && isBlank(header[i]!)) i++;
  let last = i;
  while (last < 108 && header[last]! >= 0x30 && header[last]! <= 0x37) last++;
  // Octal digits from the right: permissions of others, group, owner, then the setuid/setgid/sticky digit.
  const digit = last - 4;
  return digit >= i && (header[digit]! - 0x30) & 6 ? digit : -1;
}

/** Sum of the header's bytes with the checksum field counted as spaces, written as GNU tar writes it. */
function writeChecksum(header: Buffer): void {
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < block; i++) sum += header[i]!;
  header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
}

function decimal(text: string, keyword: string): number {
  const value = /^[0-9]{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value)) throw new WsdError('DATA_LOSS', `archive is corrupt: pax ${keyword}=${JSON.stringify(text.slice(0, 40))} is not a byte count`);
  return value;
}

/**
 * Pax records: "<length> <key>=<value>\n", length counting the whole record. Only the canonical form GNU tar writes
 * is accepted: GNU tar also reads blanks around the length and stops quietly at a NUL, which would let a record mean
 * something to tar and something else (or nothing) here.
 */
function parsePax(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  const corrupt = (why: string) => new WsdError('DATA_LOSS', `archive is corrupt: malformed pax header (${why})`);
  let offset = 0;
  while (offset < body.length) {
    const space = body.indexOf(0x20, offset);
    const lengthText = space === -1 ? '' : body.subarray(offset, space).toString('latin1');
    if (!/^[0-9]{1,7}$/.test(lengthText)) throw corrupt('bad record length');
    const next = offset + Number(lengthText);
    if (next > body.length || next <= space + 1 || body[next - 1] !== 0x0a) throw corrupt('record does not end with a newline where its length says');
    const recordBytes = body.subarray(space + 1, next - 1);
    const eq = recordBytes.indexOf(0x3d);
    if (eq <= 0) throw corrupt('record without a keyword');
    const key = recordBytes.subarray(0, eq).toString('utf8');
    const value = recordBytes.subarray(eq + 1);
    // GNU tar reads keywords and names up to a NUL; refuse rather than read more than it does.
    if (key.includes('\u0000') || /^[ \t]/.test(key)) throw corrupt('odd keyword');
    if ((key === 'path' || key === 'linkpath' || key === 'GNU.sparse.name' || key === 'size') && value.includes(0)) throw corrupt(`NUL in ${key}`);
    out[key] = value.toString('utf8');
    offset = next;
  }
  return out;
}

/**
 * Reads the map at the start of a GNU pax sparse 1.0 member's data ("<count>\n" then "<offset>\n<size>\n" per data
 * region, padded to a block) and checks that the regions tar will read fill exactly the stored size. GNU tar trusts
 * the map, not the size field: reading one block per region, a map that does not add up would make it read headers
 * as data (or data as headers) where this inspector does not.
 */
class SparseMapReader {
  #value = 0;
  #digits = 0;
  #numbers = 0;
  #count = -1;
  #offset = 0;
  #mapBytes = 0;
  #dataBytes = 0;
  #dataBlocks = 0;

  constructor(
    readonly name: string,
    readonly storedSize: number,
    readonly realSize: number,
  ) {}

  /** Reads map bytes from chunk[from, to); true once the map is complete and checked. */
  read(chunk: Buffer, from: number, to: number): boolean {
    for (let i = from; i < to; i++) {
      const byte = chunk[i]!;
      if (++this.#mapBytes > this.storedSize) this.#refuse('its sparse map runs past its stored data');
      if (byte >= 0x30 && byte <= 0x39 && this.#digits < 16) {
        this.#value = this.#value * 10 + byte - 0x30;
        this.#digits++;
      } else if (byte === 0x0a && this.#digits > 0) {
        if (this.#number(this.#value)) return true;
        this.#value = 0;
        this.#digits = 0;
      } else {
        this.#refuse('malformed sparse map');
      }
    }
    return false;
  }

  /** The member's data ended before its map did. */
  incomplete(): never {
    this.#refuse('its sparse map runs past its stored data');
  }

  #number(value: number): boolean {
    const n = this.#numbers++;
    if (n === 0) this.#count = value;
    else if (n % 2 === 1) this.#offset = value;
    else {
      if (this.#offset + value > this.realSize) this.#refuse('a sparse region past the end of the file');
      this.#dataBytes += value;
      this.#dataBlocks += Math.ceil(value / block);
    }
    if (this.#numbers < 1 + 2 * this.#count) return false;
    const data = this.storedSize - padded(this.#mapBytes);
    if (this.#dataBytes !== data || this.#dataBlocks * block !== padded(data)) {
      this.#refuse(`its sparse map describes ${this.#dataBytes} bytes in ${this.#dataBlocks} blocks, its stored data is ${data} bytes`);
    }
    return true;
  }

  #refuse(why: string): never {
    throw new WsdError('DATA_LOSS', `archive member ${JSON.stringify(this.name)} refused: ${why}`);
  }
}
