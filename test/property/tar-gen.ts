/**
 * fast-check generators of tar streams, hostile and malformed: every header field raw (names with `..`, absolute,
 * long names through pax `path` or GNU `L`, link names, all type flags, modes with setuid/setgid, sizes in octal,
 * base-256, negative, garbage or huge, bad checksums, ustar/GNU/v7 magic, ustar prefixes), pax and GNU meta headers
 * (well-formed and not), GNU pax sparse 1.0 members, raw bytes, "smuggled" members hidden in data (a reader that
 * frames the stream differently from the inspector would extract them), truncation and byte flips.
 */
import fc from 'fast-check';

export const block = 512;

export type NumberStyle = 'octal' | 'octal-nonul' | 'spaces' | 'leading-nul' | 'base256' | 'base256-negative' | 'garbage' | 'empty' | 'huge-octal';
export type ChecksumStyle = 'right' | 'wrong' | 'garbage' | 'signed' | 'spaces';
export type Magic = 'posix' | 'gnu' | 'v7' | 'garbage';

export interface Header {
  name: string;
  mode: number;
  modeStyle: NumberStyle;
  uid: number;
  gid: number;
  size: number;
  sizeStyle: NumberStyle;
  type: string;
  linkName: string;
  magic: Magic;
  prefix: string;
  checksum: ChecksumStyle;
}

const defaults: Header = {
  name: 'x',
  mode: 0o644,
  modeStyle: 'octal',
  uid: 0,
  gid: 0,
  size: 0,
  sizeStyle: 'octal',
  type: '0',
  linkName: '',
  magic: 'posix',
  prefix: '',
  checksum: 'right',
};

/** A number field of `width` bytes written in `style` (GNU tar writes `octal`, and `base256` for large sizes). */
export function numberField(value: number, width: number, style: NumberStyle): Buffer {
  const out = Buffer.alloc(width);
  const octal = Math.max(0, Math.floor(value)).toString(8);
  switch (style) {
    case 'octal':
      out.write(octal.padStart(width - 1, '0').slice(-(width - 1)), 0, 'latin1');
      break;
    case 'octal-nonul':
      out.write(octal.padStart(width, '0').slice(-width), 0, 'latin1');
      break;
    case 'spaces':
      out.write(` ${octal}`.padStart(width - 1, ' ').slice(-(width - 1)), 0, 'latin1');
      out[width - 1] = 0x20;
      break;
    case 'leading-nul':
      out.write(octal.padStart(width - 2, '0').slice(-(width - 2)), 1, 'latin1');
      break;
    case 'base256': {
      out[0] = 0x80;
      let v = BigInt(Math.max(0, Math.floor(value)));
      for (let i = width - 1; i >= 1; i--) {
        out[i] = Number(v & 0xffn);
        v >>= 8n;
      }
      break;
    }
    case 'base256-negative':
      out.fill(0xff);
      break;
    case 'garbage':
      out.write('1x7-+ 9\u00008'.padEnd(width, 'z').slice(0, width), 0, 'latin1');
      break;
    case 'empty':
      break;
    case 'huge-octal':
      out.write('7'.repeat(width - 1), 0, 'latin1');
      break;
  }
  return out;
}

/** One 512-byte header. */
export function header(fields: Partial<Header>): Buffer {
  const h = { ...defaults, ...fields };
  const out = Buffer.alloc(block);
  Buffer.from(h.name, 'utf8').copy(out, 0, 0, 100);
  numberField(h.mode, 8, h.modeStyle).copy(out, 100);
  numberField(h.uid, 8, 'octal').copy(out, 108);
  numberField(h.gid, 8, 'octal').copy(out, 116);
  numberField(h.size, 12, h.sizeStyle).copy(out, 124);
  numberField(1_700_000_000, 12, 'octal').copy(out, 136);
  out[156] = h.type.length ? h.type.charCodeAt(0) & 0xff : 0;
  Buffer.from(h.linkName, 'utf8').copy(out, 157, 0, 100);
  if (h.magic === 'posix') out.write('ustar\u000000', 257, 'latin1');
  else if (h.magic === 'gnu') out.write('ustar  \u0000', 257, 'latin1');
  else if (h.magic === 'garbage') out.write('ustaR\u00000x', 257, 'latin1');
  out.write('root', 265, 'latin1');
  out.write('root', 297, 'latin1');
  numberField(0, 8, 'octal').copy(out, 329);
  numberField(0, 8, 'octal').copy(out, 337);
  if (h.magic === 'posix') Buffer.from(h.prefix, 'utf8').copy(out, 345, 0, 155);
  out.fill(0x20, 148, 156);
  let unsigned = 0;
  let signed = 0;
  for (const byte of out) {
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  const write = (sum: number) => out.write(`${Math.max(0, sum).toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
  switch (h.checksum) {
    case 'right':
      write(unsigned);
      break;
    case 'wrong':
      write(unsigned + 1);
      break;
    case 'signed':
      write(signed);
      break;
    case 'garbage':
      out.write('zz\u0000zz  z', 148, 'latin1');
      break;
    case 'spaces':
      break;
  }
  return out;
}

export function pad(data: Buffer): Buffer {
  const rest = data.length % block;
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(block - rest)]);
}

/** Canonical pax records ("<len> key=value\n"). */
export function paxBody(records: Array<[string, string]>): Buffer {
  return Buffer.concat(
    records.map(([key, value]) => {
      const body = Buffer.from(` ${key}=${value}\n`, 'utf8');
      let length = body.length + 1;
      while (String(length).length + body.length !== length) length++;
      return Buffer.concat([Buffer.from(String(length), 'latin1'), body]);
    }),
  );
}

/** A meta header (`x`, `g`, `L`, `K`) with its body. */
export function meta(type: string, body: Buffer, checksum: ChecksumStyle = 'right'): Buffer {
  return Buffer.concat([header({ name: type === 'L' || type === 'K' ? '././@LongLink' : `PaxHeaders/${type}`, type, size: body.length, checksum, magic: type === 'L' || type === 'K' ? 'gnu' : 'posix' }), pad(body)]);
}

// ---------------------------------------------------------------------------------------------------------------

/** Paths a stream refers to: the extraction folder's neighbours, given when the generators are built. */
export interface TarWorld {
  /** An absolute folder outside the extraction folder that must stay empty. */
  outside: string;
  /** An absolute path of a file outside the extraction folder that must stay unchanged (hard-link target). */
  victim: string;
  /** `victim` relative to the extraction folder (`../victims/victim`). */
  victimRelative: string;
}

/** Members that, if a reader framed the stream differently from the inspector, would escape when extracted. */
export function smuggled(world: TarWorld): Buffer {
  const data = Buffer.from('smuggled\n');
  return Buffer.concat([
    header({ name: '../wsdprop-smuggled', size: data.length }),
    pad(data),
    header({ name: 'wsdprop-smuggled-link', type: '2', linkName: world.outside }),
    header({ name: 'wsdprop-smuggled-link/through', size: data.length }),
    pad(data),
    header({ name: 'wsdprop-smuggled-hard', type: '1', linkName: world.victim }),
    header({ name: `${world.outside}/abs`, size: data.length }),
    pad(data),
  ]);
}

export interface Entry {
  bytes: Buffer;
  /** For reports: what the entry is meant to be. */
  label: string;
}

export function tarArbitraries(world: TarWorld) {
  const smuggledBytes = smuggled(world);
  const anyText = fc.oneof(fc.string({ maxLength: 30 }), fc.string({ unit: 'binary', maxLength: 20 }));
  const segment = fc.constantFrom('a', 'dir', 'sub', 'f', 'link', 'hard', 'up', '..', '.', '', 'é', ' ', 'wsdprop-x');
  /** Names a real tree has (no `..`, not absolute): hostile only in combination (a symlink, then a member below it). */
  const benignSegment = fc.constantFrom('a', 'dir', 'sub', 'f', 'link', 'hard', 'up', 'wsdprop-x', 'é', '.');
  const nameArb = fc.oneof(
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        'a',
        'f',
        'dir/',
        'dir',
        'dir/f',
        './x',
        './',
        '.',
        '..',
        '../wsdprop-escape',
        'a/../../wsdprop-escape',
        'dir/../../wsdprop-escape',
        '/wsdprop-abs',
        `${world.outside}/abs`,
        '//wsdprop-abs',
        'link',
        'link/',
        'link/wsdprop-through',
        'link/sub/f',
        './link/wsdprop-through',
        'dir//link/wsdprop-through',
        'dir/./link/wsdprop-through',
        'dir/link/wsdprop-through',
        'hard',
        'hard/wsdprop-through',
        'up/wsdprop-through',
        'a\\..\\..\\wsdprop-escape',
        'a\u0000../../wsdprop-escape',
        'link\u0000/x',
        '',
        'x'.repeat(150),
        `${'d/'.repeat(60)}f`,
        `${'d/'.repeat(60)}../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../wsdprop-escape`,
      ),
    },
    { weight: 12, arbitrary: fc.tuple(fc.constantFrom('', '', '', './'), fc.array(benignSegment, { minLength: 1, maxLength: 4 })).map(([lead, s]) => lead + s.join('/')) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom('', '', '', '', './', '/'), fc.array(segment, { minLength: 1, maxLength: 4 })).map(([lead, s]) => lead + s.join('/')) },
    { weight: 1, arbitrary: anyText },
  );
  const linkArb = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.constantFrom(
        '/',
        '..',
        '../..',
        '../',
        '.',
        '',
        world.outside,
        `${world.outside}/`,
        world.victim,
        world.victimRelative,
        `dir/../${world.victimRelative}`,
        'a',
        'f',
        'dir',
        'dir/f',
        'link',
        'link/wsdprop-through',
        'hard',
        'up',
        '/wsdprop-abs',
        '/proc/self/root',
        '/dev/null',
      ),
    },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom('', '', './', '/'), fc.array(segment, { minLength: 1, maxLength: 4 })).map(([lead, s]) => lead + s.join('/')) },
    { weight: 1, arbitrary: anyText },
  );
  const typeArb = fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom('0', '5', '2', '1') },
    { weight: 3, arbitrary: fc.constantFrom('3', '4', '6', '7', '\u0000', 'D', 'V', 'M', 'N', 'S', 'X', 'A', 'x', 'g', 'L', 'K', ' ') },
    { weight: 1, arbitrary: fc.nat({ max: 255 }).map((n) => String.fromCharCode(n)) },
  );
  const modeArb = fc.oneof(fc.constantFrom(0o644, 0o755, 0o4755, 0o2755, 0o6777, 0o7777, 0o1777, 0o2775, 0o4000, 0o6000, 0o777), fc.nat({ max: 0o7777 }));
  const numberStyleArb = (plain: number) =>
    fc.oneof(
      { weight: plain, arbitrary: fc.constant<NumberStyle>('octal') },
      { weight: 1, arbitrary: fc.constantFrom<NumberStyle>('octal-nonul', 'spaces', 'leading-nul', 'base256', 'base256-negative', 'garbage', 'empty', 'huge-octal') },
    );
  const dataArb = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(Buffer.alloc(0), Buffer.from('hello\n')) },
    { weight: 2, arbitrary: fc.constant(null).map(() => smuggledBytes) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 1300 }).map((a) => Buffer.from(a)) },
  );
  /** How the declared size relates to the data written. */
  const sizeArb = fc.oneof(
    { weight: 20, arbitrary: fc.constant<'match' | number>('match') },
    { weight: 1, arbitrary: fc.constantFrom<'match' | number>(0, 1, 511, 512, 513, 8 * 1024 ** 3, 2 ** 40, Number.MAX_SAFE_INTEGER) },
  );

  const memberArb = fc
    .record({
      name: nameArb,
      type: typeArb,
      linkName: linkArb,
      mode: modeArb,
      modeStyle: numberStyleArb(30),
      uid: fc.constantFrom(0, 1000, 65534, 2 ** 21 - 1),
      gid: fc.constantFrom(0, 1000, 65534),
      size: sizeArb,
      sizeStyle: numberStyleArb(30),
      data: dataArb,
      checksum: fc.oneof({ weight: 40, arbitrary: fc.constant<ChecksumStyle>('right') }, { weight: 1, arbitrary: fc.constantFrom<ChecksumStyle>('wrong', 'garbage', 'signed', 'spaces') }),
      magic: fc.oneof({ weight: 12, arbitrary: fc.constant<Magic>('posix') }, { weight: 1, arbitrary: fc.constantFrom<Magic>('gnu', 'v7', 'garbage') }),
      prefix: fc.oneof({ weight: 15, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.oneof(nameArb, fc.constantFrom('..', '/', 'link', world.outside)) }),
      /** Where the name really is: the header, a pax `path` record, or a GNU `L` header (the header then says `benign`). */
      longName: fc.oneof({ weight: 8, arbitrary: fc.constant('none') }, { weight: 1, arbitrary: fc.constantFrom('pax', 'gnu', 'both') }),
      longLink: fc.oneof({ weight: 8, arbitrary: fc.constant('none') }, { weight: 1, arbitrary: fc.constantFrom('pax', 'gnu') }),
      extraPax: fc.oneof(
        { weight: 12, arbitrary: fc.constant<Array<[string, string]>>([]) },
        {
          weight: 1,
          arbitrary: fc.array(
            fc.tuple(
              fc.constantFrom('size', 'path', 'linkpath', 'mtime', 'uid', 'GNU.sparse.size', 'GNU.sparse.major', 'GNU.sparse.name', 'SCHILY.xattr.security.capability', 'SCHILY.acl.access', 'x', 'comment'),
              fc.oneof(fc.constantFrom('0', '1', '512', '99999999999', '-1', '1e3', ' 1', '../wsdprop-escape', world.outside, ''), anyText),
            ),
            { maxLength: 3 },
          ),
        },
      ),
    })
    .map((m): Entry => {
      // Links, folders, devices and fifos carry no data unless the size says otherwise.
      if (['1', '2', '3', '4', '5', '6'].includes(m.type) && m.size === 'match' && m.data !== smuggledBytes) m.data = Buffer.alloc(0);
      const declared = m.size === 'match' ? m.data.length : m.size;
      const parts: Buffer[] = [];
      const pax: Array<[string, string]> = [...m.extraPax];
      let headerName = m.name;
      let headerLink = m.linkName;
      if (m.longName === 'pax' || m.longName === 'both') {
        pax.push(['path', m.name]);
        headerName = 'benign';
      }
      if (m.longLink === 'pax') {
        pax.push(['linkpath', m.linkName]);
        headerLink = 'benign';
      }
      if (pax.length) parts.push(meta('x', paxBody(pax)));
      if (m.longName === 'gnu' || m.longName === 'both') {
        parts.push(meta('L', Buffer.from(`${m.name}\u0000`, 'utf8')));
        headerName = 'benign';
      }
      if (m.longLink === 'gnu') {
        parts.push(meta('K', Buffer.from(`${m.linkName}\u0000`, 'utf8')));
        headerLink = 'benign';
      }
      parts.push(
        header({ name: headerName, type: m.type, linkName: headerLink, mode: m.mode, modeStyle: m.modeStyle, uid: m.uid, gid: m.gid, size: declared, sizeStyle: m.sizeStyle, checksum: m.checksum, magic: m.magic, prefix: m.prefix }),
        pad(m.data),
      );
      return { bytes: Buffer.concat(parts), label: `member ${JSON.stringify(m.name)} type ${JSON.stringify(m.type)} link ${JSON.stringify(m.linkName)} size ${declared}/${m.sizeStyle} data ${m.data.length}` };
    });

  /** A GNU pax sparse 1.0 member, its map consistent or not. */
  const sparseArb = fc
    .record({
      name: nameArb,
      realsize: fc.constantFrom(0, 10, 4096, 2 ** 30),
      regions: fc.array(fc.tuple(fc.nat({ max: 8192 }), fc.nat({ max: 1100 })), { maxLength: 3 }),
      extraBytes: fc.constantFrom(0, 0, 0, 1, 512, -1),
      major: fc.constantFrom('1', '1', '1', '0', '2'),
      mode: modeArb,
    })
    .map((s): Entry => {
      const map = Buffer.from(`${s.regions.length}\n${s.regions.map(([o, l]) => `${o}\n${l}\n`).join('')}`, 'latin1');
      const body = Buffer.concat([pad(map), ...s.regions.map(([, l]) => Buffer.alloc(l, 0x61))]);
      const size = Math.max(0, body.length + s.extraBytes);
      const records: Array<[string, string]> = [
        ['GNU.sparse.major', s.major],
        ['GNU.sparse.minor', '0'],
        ['GNU.sparse.name', s.name],
        ['GNU.sparse.realsize', String(s.realsize)],
      ];
      return {
        bytes: Buffer.concat([meta('x', paxBody(records)), header({ name: 'GNUSparseFile.0/benign', size, mode: s.mode }), pad(body.subarray(0, size))]),
        label: `sparse ${JSON.stringify(s.name)} regions ${JSON.stringify(s.regions)}`,
      };
    });

  /** Pax and GNU meta headers on their own, malformed or not. */
  const metaArb = fc.oneof(
    fc.tuple(fc.constantFrom('x', 'g'), fc.array(fc.tuple(fc.constantFrom('path', 'linkpath', 'size', 'GNU.sparse.name', 'comment'), fc.oneof(nameArb, fc.constantFrom('0', '99999'))), { maxLength: 3 })).map(
      ([type, records]): Entry => ({ bytes: meta(type, paxBody(records)), label: `${type} ${JSON.stringify(records)}` }),
    ),
    fc
      .constantFrom('10 path=a\n', '5 path=../wsdprop-escape\n', '99 path=x\n', 'path=x\n', '  12 path=ab\n', '12 path=a\u0000b\n', '0 \n', '11 =value\n', '13 size=-1\n', '')
      .map((raw): Entry => ({ bytes: meta('x', Buffer.from(raw, 'latin1')), label: `raw pax ${JSON.stringify(raw)}` })),
    fc.tuple(fc.constantFrom('L', 'K'), nameArb).map(([type, name]): Entry => ({ bytes: meta(type, Buffer.from(`${name}\u0000`)), label: `${type} ${JSON.stringify(name)}` })),
    fc.constant<Entry>({ bytes: meta('x', Buffer.alloc(2 * 1024 * 1024, 0x61)), label: 'huge pax' }),
  );

  const rawArb = fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 1100 }).map((a): Entry => ({ bytes: Buffer.from(a), label: `raw ${a.length} bytes` })),
    fc.constant<Entry>({ bytes: Buffer.alloc(block), label: 'zero block' }),
    fc.uint8Array({ minLength: block, maxLength: block }).map((a): Entry => ({ bytes: Buffer.from(a), label: 'random block' })),
  );

  const entryArb = fc.oneof({ weight: 20, arbitrary: memberArb }, { weight: 2, arbitrary: sparseArb }, { weight: 2, arbitrary: metaArb }, { weight: 1, arbitrary: rawArb });

  /** A whole stream: entries, an ending, then maybe truncated and with a few bytes flipped. */
  const streamArb = fc
    .record({
      entries: fc.array(entryArb, { maxLength: 8 }),
      ending: fc.oneof({ weight: 8, arbitrary: fc.constant('two-zero') }, { weight: 1, arbitrary: fc.constantFrom('one-zero', 'none', 'zero-then-smuggled', 'two-zero-then-smuggled') }),
      truncate: fc.oneof({ weight: 8, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat({ max: 20_000 }) }),
      flips: fc.oneof({ weight: 12, arbitrary: fc.constant<Array<[number, number]>>([]) }, { weight: 1, arbitrary: fc.array(fc.tuple(fc.nat({ max: 20_000 }), fc.nat({ max: 255 })), { maxLength: 3 }) }),
    })
    .map(({ entries, ending, truncate, flips }) => {
      const tail =
        ending === 'two-zero'
          ? Buffer.alloc(2 * block)
          : ending === 'one-zero'
            ? Buffer.alloc(block)
            : ending === 'zero-then-smuggled'
              ? Buffer.concat([Buffer.alloc(block), smuggled(world), Buffer.alloc(2 * block)])
              : ending === 'two-zero-then-smuggled'
                ? Buffer.concat([Buffer.alloc(2 * block), smuggled(world), Buffer.alloc(2 * block)])
                : Buffer.alloc(0);
      let bytes = Buffer.concat([...entries.map((e) => e.bytes), tail]);
      if (truncate !== null && truncate < bytes.length) bytes = bytes.subarray(0, truncate);
      if (flips.length) {
        bytes = Buffer.from(bytes);
        for (const [at, value] of flips) if (at < bytes.length) bytes[at] = value;
      }
      const labels = [...entries.map((e) => e.label), `ending ${ending}`, ...(truncate !== null ? [`truncated at ${truncate}`] : []), ...(flips.length ? [`flips ${JSON.stringify(flips)}`] : [])];
      // A failure report shows what the stream holds, and its bytes (base64) to replay it exactly.
      return { bytes, labels, [fc.toStringMethod]: () => `tar stream ${JSON.stringify(labels)} (${bytes.length} bytes, base64 ${bytes.toString('base64')})` };
    });

  return { streamArb, memberArb, entryArb };
}
