import { Readable } from 'node:stream';
import { WsdError } from '../errors.js';

/** One entry of an archive written by {@link tarStream}. */
export interface TarMember {
  /**
   * Relative, '/'-separated, without a leading './' or a trailing '/' (folders too): `src/main.ts`. `''` or `'.'` is
   * the archive root, allowed only as the first member and only as a folder (its mode, owner and mtime are what
   * `tar -x` gives the folder it extracts into).
   */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'fifo' | 'char' | 'block';
  /** Permission bits including setuid, setgid and sticky (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Nanoseconds since the epoch (negative: before it). */
  mtimeNs: bigint;
  /** Files: the exact byte count of `data` (0 or absent for an empty file). Ignored for other types. */
  size?: number;
  /**
   * Symlinks: the link's content, written as given (it may point anywhere; tar does not follow it).
   * Hard links: the path of an earlier file member, in the same form as `path` (GNU tar can only link to a member
   * it has already extracted; the writer does not keep every path to check this).
   */
  linkTarget?: string;
  /** Character and block devices. */
  devMajor?: number;
  devMinor?: number;
  /**
   * Files: the content, called once when the member is written. Chunks are handed on without a copy: do not reuse
   * a chunk's memory after yielding it.
   */
  data?: () => AsyncIterable<Uint8Array>;
}

const block = 512;
/** GNU tar's default record (20 blocks): the archive is padded to a whole number of them, as GNU tar pads its own. */
const record = 20 * block;
/** Headers and small data are gathered into pieces of about this size (one push per header would cost more than the bytes). */
const coalesceBytes = 64 * 1024;

const typeFlags: Record<TarMember['type'], string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

/** The largest values the ustar octal fields hold (digits, then a NUL); anything larger goes into a pax record. */
const maxOctal7 = 0o7777777;
const maxOctal11 = 0o77777777777;
const nsPerSecond = 1_000_000_000n;

/**
 * A POSIX (pax) tar stream of `members`: what `tar --format=posix` writes, so that GNU tar (and any pax reader)
 * extracts it exactly — modes with setuid/setgid/sticky, numeric owners, nanosecond mtimes, symlinks,
 * hard links, fifos and devices, long and non-ASCII names, files of 8 GiB and more.
 *
 * Order: members go out as given. Give them depth-first, a folder's whole content right after the folder (as a tree
 * walk yields them): GNU tar sets a folder's mtime once it extracts a member outside it, and anything extracted into
 * the folder later would change that mtime again.
 *
 * Layout: every member is named `./<path>` and the root (when given) `./`, as `tar -C dir -cf - .` names them, so an
 * export of any backup format lists the same names. Folders end with `/`. Each member gets a ustar header; a pax
 * `x` header goes before it when a value does not fit there: a name or link target over 100 bytes or not ASCII
 * (`path`, `linkpath`), a size of 8 GiB or more (`size`), a uid/gid over 2097151 (`uid`, `gid`), an mtime with a
 * fraction of a second, before 1970 or after 2242 (`mtime`). User and group names are left empty (numeric owners).
 * The stream ends with two zero blocks and is padded with zeros to a whole 10 KiB record.
 *
 * The stream fails — never ends cleanly — with `DATA_LOSS` when a member is malformed (a path with `..` or empty
 * segments, a root that is not first, a mode or owner out of range) or when a file's data yields more or fewer bytes
 * than its `size`; with the error of `members` or of a `data()` iterable when those throw. Backpressure holds: the
 * next chunk of data is asked for only when the reader wants more, so nothing buffers a whole file. Destroying the
 * stream stops `members` and the running `data()` iterable (their `return()` is called).
 */
export function tarStream(members: AsyncIterable<TarMember>): Readable {
  return Readable.from(tarChunks(members), { objectMode: false, highWaterMark: coalesceBytes });
}

async function* tarChunks(members: AsyncIterable<TarMember>): AsyncGenerator<Buffer> {
  const out = new Coalescer();
  let index = 0;
  let offset = 0; // bytes written so far, to pad the end to a whole record
  for await (const member of members) {
    const first = index++ === 0;
    const headers = memberHeaders(member, first);
    offset += headers.length;
    yield* out.add(headers);
    if (member.type !== 'file') continue;
    const size = member.size ?? 0;
    let written = 0;
    if (member.data) {
      for await (const chunk of member.data()) {
        if (chunk.byteLength === 0) continue;
        written += chunk.byteLength;
        if (written > size) throw sizeMismatch(member, `its data runs past ${size} bytes`);
        yield* out.add(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      }
    }
    if (written !== size) throw sizeMismatch(member, `its data ended after ${written} bytes`);
    const padding = (block - (size % block)) % block;
    offset += size + padding;
    if (padding > 0) yield* out.add(Buffer.alloc(padding));
  }
  // Two zero blocks end the archive; zeros up to the record boundary follow, as GNU tar writes them.
  const end = 2 * block;
  yield* out.add(Buffer.alloc(end + ((record - ((offset + end) % record)) % record)));
  yield* out.flush();
}

function sizeMismatch(member: TarMember, detail: string): WsdError {
  return new WsdError('DATA_LOSS', `tar member ${JSON.stringify(member.path)} declares ${member.size ?? 0} bytes but ${detail}`);
}

/** Gathers small pieces into one chunk; a large piece goes out as it is (after what was gathered before it). */
class Coalescer {
  #pieces: Buffer[] = [];
  #bytes = 0;

  *add(piece: Buffer): Generator<Buffer> {
    if (piece.length >= coalesceBytes) {
      yield* this.flush();
      yield piece;
      return;
    }
    this.#pieces.push(piece);
    this.#bytes += piece.length;
    if (this.#bytes >= coalesceBytes) yield* this.flush();
  }

  *flush(): Generator<Buffer> {
    if (this.#bytes === 0) return;
    const pieces = this.#pieces;
    this.#pieces = [];
    this.#bytes = 0;
    yield pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  }
}

/** The pax header (when needed) and the ustar header of one member. */
function memberHeaders(member: TarMember, first: boolean): Buffer {
  const refuse = (why: string): never => {
    throw new WsdError('DATA_LOSS', `tar member ${JSON.stringify(member?.path)} refused: ${why}`);
  };
  if (member === null || typeof member !== 'object') refuse('not an object');
  const flag = typeFlags[member.type];
  if (flag === undefined) refuse(`unknown type ${JSON.stringify(member.type)}`);
  const root = member.path === '' || member.path === '.';
  if (root) {
    if (!first) refuse('the archive root must be the first member');
    if (member.type !== 'dir') refuse('the archive root must be a folder');
  } else {
    checkPath(member.path, 'path', refuse);
  }
  if (!Number.isInteger(member.mode) || member.mode < 0 || member.mode > 0o7777) refuse(`mode ${member.mode} is not within 0..0o7777`);
  for (const key of ['uid', 'gid'] as const) {
    if (!Number.isSafeInteger(member[key]) || member[key] < 0) refuse(`${key} ${member[key]} is not a non-negative integer`);
  }
  if (typeof member.mtimeNs !== 'bigint') refuse('mtimeNs is not a bigint');
  const size = member.type === 'file' ? (member.size ?? 0) : 0;
  if (!Number.isSafeInteger(size) || size < 0) refuse(`size ${member.size} is not a non-negative integer`);

  let linkName = '';
  if (member.type === 'symlink') {
    if (typeof member.linkTarget !== 'string' || member.linkTarget === '') refuse('a symlink needs a linkTarget');
    if (member.linkTarget!.includes('\u0000')) refuse('NUL in linkTarget');
    if (lonelySurrogate.test(member.linkTarget!)) refuse('linkTarget is not valid Unicode');
    linkName = member.linkTarget!;
  } else if (member.type === 'hardlink') {
    if (typeof member.linkTarget !== 'string') refuse('a hard link needs a linkTarget');
    checkPath(member.linkTarget!, 'linkTarget', refuse);
    linkName = `./${member.linkTarget}`;
  }
  let devMajor = 0;
  let devMinor = 0;
  if (member.type === 'char' || member.type === 'block') {
    devMajor = member.devMajor ?? 0;
    devMinor = member.devMinor ?? 0;
    for (const [key, value] of [['devMajor', devMajor], ['devMinor', devMinor]] as const) {
      if (!Number.isInteger(value) || value < 0 || value > maxOctal7) refuse(`${key} ${value} is not within 0..${maxOctal7}`);
    }
  }

  const name = root ? './' : `./${member.path}${member.type === 'dir' ? '/' : ''}`;
  const seconds = floorDiv(member.mtimeNs, nsPerSecond);
  const fraction = member.mtimeNs - seconds * nsPerSecond;
  const pax: Array<[string, string]> = [];
  if (!fitsUstarText(name)) pax.push(['path', name]);
  if (linkName !== '' && !fitsUstarText(linkName)) pax.push(['linkpath', linkName]);
  if (size > maxOctal11) pax.push(['size', String(size)]);
  if (member.uid > maxOctal7) pax.push(['uid', String(member.uid)]);
  if (member.gid > maxOctal7) pax.push(['gid', String(member.gid)]);
  const headerSeconds = seconds >= 0n && seconds <= BigInt(maxOctal11) ? Number(seconds) : undefined;
  if (fraction !== 0n || headerSeconds === undefined) pax.push(['mtime', paxTime(member.mtimeNs)]);

  const header = ustarHeader({
    name: asciiFallback(name),
    mode: member.mode,
    uid: member.uid <= maxOctal7 ? member.uid : 0,
    gid: member.gid <= maxOctal7 ? member.gid : 0,
    size: size <= maxOctal11 ? size : 0,
    mtime: headerSeconds ?? 0,
    flag,
    linkName: asciiFallback(linkName),
    devMajor,
    devMinor,
  });
  if (pax.length === 0) return header;
  const records = paxRecords(pax);
  const paxHeader = ustarHeader({
    // GNU tar names these `<dir>/PaxHeaders/<file>`; a reader without pax support extracts it as a plain file.
    name: asciiFallback(`./PaxHeaders/${baseName(name)}`),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: records.length,
    mtime: headerSeconds ?? 0,
    flag: 'x',
    linkName: '',
    devMajor: 0,
    devMinor: 0,
  });
  return Buffer.concat([paxHeader, records, Buffer.alloc((block - (records.length % block)) % block), header]);
}

/** Matches an unpaired UTF-16 surrogate, which has no UTF-8 form (it would be written as U+FFFD, another name). */
const lonelySurrogate = /[\uD800-\uDFFF]/u;

function checkPath(value: string, key: string, refuse: (why: string) => never): void {
  if (typeof value !== 'string' || value === '') refuse(`${key} is empty`);
  if (value.includes('\u0000')) refuse(`NUL in ${key}`);
  if (lonelySurrogate.test(value)) refuse(`${key} is not valid Unicode`);
  if (value.startsWith('/')) refuse(`${key} is absolute`);
  for (const segment of value.split('/')) {
    if (segment === '') refuse(`${key} has an empty segment (a leading, trailing or double '/')`);
    if (segment === '.' || segment === '..') refuse(`${key} has a "${segment}" segment`);
  }
}

/** Whether `text` fits a 100-byte ustar field as is: ASCII (no pax needed to say how to read it) and short enough. */
function fitsUstarText(text: string): boolean {
  return text.length <= 100 && /^[\x01-\x7f]*$/.test(text);
}

/** What goes in a ustar text field when pax carries the real value: the ASCII part, cut to 100 bytes. */
function asciiFallback(text: string): string {
  return fitsUstarText(text) ? text : text.replace(/[^\x01-\x7f]/g, '_').slice(0, 100);
}

function baseName(name: string): string {
  const trimmed = name.endsWith('/') ? name.slice(0, -1) : name;
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n ? q - 1n : q;
}

/** A pax time: decimal seconds with up to nine fraction digits, trailing zeros dropped ("-1.5" is 1.5 s before the epoch). */
function paxTime(ns: bigint): string {
  const negative = ns < 0n;
  const abs = negative ? -ns : ns;
  const whole = abs / nsPerSecond;
  const fraction = (abs % nsPerSecond).toString().padStart(9, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

/** Pax records "<length> <key>=<value>\n", the length counting the whole record, itself included. */
function paxRecords(records: Array<[string, string]>): Buffer {
  return Buffer.concat(
    records.map(([key, value]) => {
      const body = Buffer.byteLength(` ${key}=${value}\n`);
      let length = body + 1;
      while (String(length).length + body !== length) length++;
      return Buffer.from(`${length} ${key}=${value}\n`, 'utf8');
    }),
  );
}

interface UstarFields {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  flag: string;
  linkName: string;
  devMajor: number;
  devMinor: number;
}

/** One 512-byte POSIX ustar header, fields as GNU tar writes them (octal digits then a NUL; checksum last). */
function ustarHeader(f: UstarFields): Buffer {
  const header = Buffer.alloc(block);
  header.write(f.name, 0, 100, 'latin1');
  header.write(octal(f.mode, 8), 100, 'latin1');
  header.write(octal(f.uid, 8), 108, 'latin1');
  header.write(octal(f.gid, 8), 116, 'latin1');
  header.write(octal(f.size, 12), 124, 'latin1');
  header.write(octal(f.mtime, 12), 136, 'latin1');
  header.fill(0x20, 148, 156); // the checksum counts its own field as spaces
  header.write(f.flag, 156, 'latin1');
  header.write(f.linkName, 157, 100, 'latin1');
  header.write('ustar\u000000', 257, 'latin1');
  // uname (265) and gname (297) stay empty: owners are numeric, as `tar --numeric-owner` writes them.
  if (f.flag === '3' || f.flag === '4') {
    header.write(octal(f.devMajor, 8), 329, 'latin1');
    header.write(octal(f.devMinor, 8), 337, 'latin1');
  }
  let sum = 0;
  for (let i = 0; i < block; i++) sum += header[i]!;
  header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
  return header;
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\u0000`;
}
