import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';
import { isIP, isIPv4, isIPv6, type LookupFunction } from 'node:net';

/**
 * Which network addresses wsd may connect to on behalf of a request.
 *
 * wsd runs as root on a node, inside the cluster network: a URL taken from a request (a download, a git remote) can
 * point at the node itself (loopback), at the cloud's instance metadata service (link-local 169.254.169.254 hands
 * out node credentials), or anywhere else the node can reach but the caller cannot — server-side request forgery.
 * An {@link AddressPolicy} decides per IP address; {@link guardedLookup} applies it to the addresses a connection is
 * actually made to, so a name that resolves differently the second time (DNS rebinding) cannot slip through.
 *
 * Glossary:
 * - *CIDR*: `address/prefix` (`10.0.0.0/8`, `fd00::/8`); a bare address means the single host (`/32`, `/128`).
 * - *IPv4-mapped IPv6* (`::ffff:127.0.0.1`, also written `::ffff:7f00:1`): a socket connecting to it reaches the
 *   IPv4 address, so it is treated as that IPv4 address everywhere here — in policies and in checked addresses.
 */

/** An IP network, normalised: IPv4-mapped IPv6 networks become IPv4 ones. */
export interface Cidr {
  readonly family: 4 | 6;
  /** The network address as a number (host bits zero). */
  readonly network: bigint;
  /** Leading bits that must match: 0–32 for IPv4, 0–128 for IPv6. */
  readonly prefix: number;
  /** As written in the config, for messages. */
  readonly text: string;
}

/** An IP address as a number; IPv4-mapped IPv6 addresses are returned as IPv4. */
export interface IpAddress {
  readonly family: 4 | 6;
  readonly value: bigint;
}

/**
 * Networks refused unless allowed, by default: the node itself and the cloud metadata services.
 * - loopback `127.0.0.0/8`, `::1/128` — daemons listening on the node only;
 * - unspecified `0.0.0.0/8`, `::/128` — connecting to them reaches the node itself on Linux;
 * - link-local `169.254.0.0/16`, `fe80::/10` — includes 169.254.169.254, the AWS, GCP and Azure metadata service;
 * - `100.100.100.200/32` (Alibaba Cloud metadata) and `fd00:ec2::254/128` (AWS metadata over IPv6).
 */
export const defaultDeniedNetworks: readonly string[] = Object.freeze([
  '127.0.0.0/8',
  '::1/128',
  '0.0.0.0/8',
  '::/128',
  '169.254.0.0/16',
  'fe80::/10',
  '100.100.100.200/32',
  'fd00:ec2::254/128',
]);

/** Parses an IP address (IPv6 may carry a `%zone`, which is ignored), or returns undefined. */
export function parseIp(text: string): IpAddress | undefined {
  if (isIPv4(text)) return { family: 4, value: ipv4Value(text) };
  const bare = text.replace(/%.*$/, '');
  if (!isIPv6(bare)) return undefined;
  const value = ipv6Value(bare);
  return value >> 32n === 0xffffn ? { family: 4, value: value & 0xffffffffn } : { family: 6, value };
}

/**
 * Parses `address/prefix` (or a bare address). Throws an Error whose message says what is wrong, e.g. for a prefix
 * out of range or host bits set (`10.0.0.1/8` — probably a typo for `10.0.0.0/8` or `10.0.0.1/32`).
 */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const prefixText = slash < 0 ? undefined : text.slice(slash + 1);
  if (addressText.includes('%')) throw new Error(`${JSON.stringify(text)}: a network cannot carry an IPv6 zone`);
  const family = isIP(addressText);
  if (family === 0) throw new Error(`${JSON.stringify(text)} is not a CIDR: expected an IP network such as 10.0.0.0/8 or fd00::/8`);
  const bits = family === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) throw new Error(`${JSON.stringify(text)}: the prefix length must be a number from 0 to ${bits}`);
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (prefix > bits) throw new Error(`${JSON.stringify(text)}: the prefix length must be at most ${bits} for IPv${family}`);
  const value = family === 4 ? ipv4Value(addressText) : ipv6Value(addressText);
  if ((value & ~mask(bits, prefix)) !== 0n) {
    const network = formatIp({ family: family as 4 | 6, value: value & mask(bits, prefix) });
    throw new Error(`${JSON.stringify(text)} has host bits set: write ${network}/${prefix} for the network, or ${addressText}/${bits} for the single address`);
  }
  // ::ffff:a.b.c.d/(96+n) is the IPv4 network a.b.c.d/n: connections to those addresses go out as IPv4.
  if (family === 6 && prefix >= 96 && value >> 32n === 0xffffn) return { family: 4, network: value & 0xffffffffn, prefix: prefix - 96, text };
  return { family: family as 4 | 6, network: value, prefix, text };
}

/**
 * True when `address` lies in `cidr` (both after IPv4-mapped normalisation). Families are kept apart: an IPv6
 * network such as `::/0` says nothing about IPv4 addresses; write `0.0.0.0/0` (or `::ffff:0.0.0.0/96`) for those.
 */
export function cidrContains(cidr: Cidr, address: IpAddress): boolean {
  if (cidr.family !== address.family) return false;
  const bits = cidr.family === 4 ? 32 : 128;
  return (address.value & mask(bits, cidr.prefix)) === cidr.network;
}

/**
 * Allows or refuses addresses: an address in `allowed` is always permitted; otherwise an address in `denied` is
 * refused; anything else is permitted. A string that is not an IP address is refused. Immutable; cheap to query.
 */
export class AddressPolicy {
  readonly denied: readonly Cidr[];
  readonly allowed: readonly Cidr[];

  /** Throws (see {@link parseCidr}) when a network does not parse. `denied` defaults to {@link defaultDeniedNetworks}. */
  constructor(options: { denied?: readonly string[]; allowed?: readonly string[] } = {}) {
    this.denied = (options.denied ?? defaultDeniedNetworks).map(parseCidr);
    this.allowed = (options.allowed ?? []).map(parseCidr);
  }

  allows(address: string): boolean {
    return this.deniedBy(address) === undefined;
  }

  /**
   * Why `address` is refused — the denied network as configured, or `not an IP address` — or undefined when it is
   * permitted. For the operator's log, not for the caller.
   */
  deniedBy(address: string): string | undefined {
    const ip = parseIp(address);
    if (!ip) return 'not an IP address';
    if (this.allowed.some((cidr) => cidrContains(cidr, ip))) return undefined;
    return this.denied.find((cidr) => cidrContains(cidr, ip))?.text;
  }
}

/** Resolves a host name to all its addresses (the shape of `dns.lookup` with `all: true`). */
export type ResolveAll = (hostname: string, options: LookupAllOptions, callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

/**
 * A `lookup` for `net`/`http`/`https` connections that resolves the host once and fails the connection — before it
 * is opened — when any resolved address is refused by `policy`; `refuse(hostname, address)` makes that error. The
 * addresses checked are the ones handed to the socket, so the check holds against DNS rebinding.
 *
 * Node calls `lookup` only for host names: a literal IP host must be checked by the caller
 * (`policy.allows(host)`) before connecting.
 */
export function guardedLookup(policy: AddressPolicy, refuse: (hostname: string, address: string) => Error, resolve: ResolveAll = dnsLookup): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, '');
      // Every address counts: with happy eyeballs (autoSelectFamily) the socket may try any of them.
      const refused = addresses.find((a) => !policy.allows(a.address));
      if (refused) return callback(refuse(hostname, refused.address), '');
      if (addresses.length === 0) return callback(Object.assign(new Error(`${hostname}: no addresses`), { code: 'ENOTFOUND' }), '');
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

/**
 * A URL as it may appear in a message, a log line or persisted state: `scheme://host[:port]/path`, without
 * userinfo, query and fragment (presigned URLs carry their signature in the query). A string that is not a URL
 * becomes `(invalid URL)` rather than being echoed.
 */
export function redactUrl(url: string | URL): string {
  let copy: URL;
  try {
    copy = new URL(typeof url === 'string' ? url : url.href);
  } catch {
    return '(invalid URL)';
  }
  copy.username = '';
  copy.password = '';
  copy.search = '';
  copy.hash = '';
  return copy.href;
}


/** The address as text: dotted IPv4, or compressed IPv6 (RFC 5952). */
export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return [24n, 16n, 8n, 0n].map((shift) => String((ip.value >> shift) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((ip.value >> BigInt(112 - 16 * i)) & 0xffffn));
  // Longest run (of at least two) of zero groups becomes "::".
  let best = { start: -1, length: 1 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length) best = { start: i, length: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.start < 0) return hex.join(':');
  return `${hex.slice(0, best.start).join(':')}::${hex.slice(best.start + best.length).join(':')}`;
}

function mask(bits: number, prefix: number): bigint {
  const all = (1n << BigInt(bits)) - 1n;
  return (all << BigInt(bits - prefix)) & all;
}

/** A valid dotted IPv4 address as a number. */
function ipv4Value(text: string): bigint {
  return text.split('.').reduce((value, part) => (value << 8n) | BigInt(Number(part)), 0n);
}

/** A valid IPv6 address (no zone) as a number; a trailing dotted IPv4 part counts as the last two groups. */
function ipv6Value(text: string): bigint {
  let groups: string[];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  const body = dotted ? text.slice(0, dotted.index) + hexPair(dotted[1]!) : text;
  const [head, tail] = body.split('::') as [string, string | undefined];
  const headGroups = head ? head.split(':') : [];
  if (tail === undefined) groups = headGroups;
  else {
    const tailGroups = tail ? tail.split(':') : [];
    groups = [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  }
  return groups.reduce((value, group) => (value << 16n) | BigInt(parseInt(group, 16)), 0n);
}

function hexPair(ipv4: string): string {
  const v = Number(ipv4Value(ipv4));
  return `${(v >>> 16).toString(16)}:${(v & 0xffff).toString(16)}`;
}
