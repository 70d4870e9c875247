import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { describe, it } from 'node:test';
import { AddressPolicy, defaultDeniedNetworks, formatIp, guardedLookup, parseCidr, parseIp, redactUrl, type ResolveAll } from '../../core/net/address-policy.js';

describe('AddressPolicy', () => {
  const policy = new AddressPolicy();

  it('denies loopback, unspecified, link-local and cloud metadata addresses by default, IPv4 and IPv6', () => {
    for (const address of ['127.0.0.1', '127.255.0.9', '0.0.0.0', '169.254.169.254', '100.100.100.200', '::1', '::', 'fe80::1', 'febf:ffff::1', 'fe80::1%eth0', 'fd00:ec2::254']) {
      assert.equal(policy.allows(address), false, address);
    }
    for (const address of ['8.8.8.8', '10.0.0.1', '192.168.1.1', '100.100.100.201', '169.255.0.1', '2001:db8::1', 'fec0::1', 'fd00:ec2::253', '::2']) {
      assert.equal(policy.allows(address), true, address);
    }
  });

  it('treats IPv4-mapped IPv6 addresses as the IPv4 address, in either notation', () => {
    for (const address of ['::ffff:127.0.0.1', '::ffff:7f00:1', '::FFFF:169.254.169.254', '::ffff:a9fe:a9fe', '0:0:0:0:0:ffff:100.100.100.200']) {
      assert.equal(policy.allows(address), false, address);
    }
    assert.equal(policy.allows('::ffff:8.8.8.8'), true);
    assert.deepEqual(parseIp('::ffff:7f00:1'), { family: 4, value: 0x7f000001n });
    // Mapped networks are IPv4 networks too.
    const mapped = new AddressPolicy({ denied: ['::ffff:10.0.0.0/104'] });
    assert.equal(mapped.allows('10.1.2.3'), false);
    assert.equal(mapped.allows('::ffff:10.1.2.3'), false);
    assert.equal(mapped.allows('11.0.0.1'), true);
  });

  it('lets allowed networks override denied ones, and refuses what is not an address', () => {
    const loopbackOne = new AddressPolicy({ allowed: ['127.0.0.1/32'] });
    assert.equal(loopbackOne.allows('127.0.0.1'), true);
    assert.equal(loopbackOne.allows('::ffff:127.0.0.1'), true);
    assert.equal(loopbackOne.allows('127.0.0.2'), false);
    assert.equal(loopbackOne.allows('::1'), false);
    assert.equal(loopbackOne.deniedBy('127.0.0.2'), '127.0.0.0/8');
    assert.equal(loopbackOne.deniedBy('127.0.0.1'), undefined);
    const custom = new AddressPolicy({ denied: ['10.0.0.0/8', 'fd00::/8'], allowed: ['10.1.0.0/16', 'fd00:1::/32'] });
    assert.deepEqual(['10.2.0.1', '10.1.9.9', 'fd00:2::1', 'fd00:1::1', '127.0.0.1'].map((a) => custom.allows(a)), [false, true, false, true, true]);
    assert.equal(policy.allows('localhost'), false);
    assert.equal(policy.allows(''), false);
    assert.equal(policy.deniedBy('example.com'), 'not an IP address');
    assert.equal(new AddressPolicy({ denied: [] }).allows('127.0.0.1'), true);
  });

  it('keeps the families apart: an IPv6 network says nothing about IPv4', () => {
    const v6 = new AddressPolicy({ denied: ['::/0'] });
    assert.equal(v6.allows('2001:db8::1'), false);
    assert.equal(v6.allows('8.8.8.8'), true);
    assert.equal(new AddressPolicy({ denied: ['0.0.0.0/0'] }).allows('::ffff:8.8.8.8'), false);
  });
});

describe('parseCidr', () => {
  it('parses IPv4 and IPv6 networks and single addresses', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { family: 4, network: 0x0a000000n, prefix: 8, text: '10.0.0.0/8' });
    assert.deepEqual(parseCidr('1.2.3.4'), { family: 4, network: 0x01020304n, prefix: 32, text: '1.2.3.4' });
    assert.deepEqual(parseCidr('0.0.0.0/0'), { family: 4, network: 0n, prefix: 0, text: '0.0.0.0/0' });
    assert.deepEqual(parseCidr('fe80::/10'), { family: 6, network: 0xfe80n << 112n, prefix: 10, text: 'fe80::/10' });
    assert.deepEqual(parseCidr('::1'), { family: 6, network: 1n, prefix: 128, text: '::1' });
    assert.deepEqual(parseCidr('::ffff:127.0.0.0/104'), { family: 4, network: 0x7f000000n, prefix: 8, text: '::ffff:127.0.0.0/104' });
    for (const cidr of defaultDeniedNetworks) assert.doesNotThrow(() => parseCidr(cidr), cidr);
  });

  it('refuses malformed networks with a message that says what is wrong', () => {
    assert.throws(() => parseCidr('example.com'), /"example.com" is not a CIDR/);
    assert.throws(() => parseCidr('10.0.0/8'), /is not a CIDR/);
    assert.throws(() => parseCidr('256.0.0.0/8'), /is not a CIDR/);
    assert.throws(() => parseCidr(''), /is not a CIDR/);
    assert.throws(() => parseCidr('10.0.0.0/33'), /at most 32 for IPv4/);
    assert.throws(() => parseCidr('fd00::/129'), /at most 128 for IPv6/);
    assert.throws(() => parseCidr('10.0.0.0/'), /prefix length must be a number/);
    assert.throws(() => parseCidr('10.0.0.0/-1'), /prefix length must be a number/);
    assert.throws(() => parseCidr('10.0.0.0/8/8'), /prefix length must be a number/);
    assert.throws(() => parseCidr('10.0.0.1/8'), /host bits set: write 10\.0\.0\.0\/8 for the network, or 10\.0\.0\.1\/32/);
    assert.throws(() => parseCidr('fe80::1/10'), /host bits set: write fe80::\/10/);
    assert.throws(() => parseCidr('fe80::%eth0/10'), /zone/);
    assert.throws(() => new AddressPolicy({ allowed: ['nonsense'] }), /"nonsense" is not a CIDR/);
  });

  it('formats addresses canonically', () => {
    assert.equal(formatIp(parseIp('2001:0db8:0:0:1:0:0:1')!), '2001:db8::1:0:0:1');
    assert.equal(formatIp(parseIp('::')!), '::');
    assert.equal(formatIp(parseIp('fd00:ec2:0::254')!), 'fd00:ec2::254');
    assert.equal(formatIp(parseIp('::ffff:7f00:1')!), '127.0.0.1');
  });
});

describe('guardedLookup', () => {
  /** A resolver that answers from a table, like DNS that an attacker controls. */
  const resolver = (table: Record<string, string[]>): ResolveAll => (hostname, _options, callback) => {
    const addresses = table[hostname];
    if (!addresses) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
    callback(null, addresses.map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 })));
  };
  const refuse = (hostname: string, address: string) => Object.assign(new Error(`refused ${hostname} -> ${address}`), { code: 'REFUSED' });
  const call = (lookup: LookupFunction, hostname: string, all: boolean) =>
    new Promise<{ error: NodeJS.ErrnoException | null; address: unknown; family?: number }>((resolve) => lookup(hostname, { all }, (error, address, family) => resolve({ error, address, family })));
  const lookup = guardedLookup(
    new AddressPolicy(),
    refuse,
    resolver({ public: ['93.184.216.34'], dual: ['93.184.216.34', '2606:2800:220:1::1'], rebind: ['93.184.216.34', '169.254.169.254'], mapped: ['::ffff:127.0.0.1'] }),
  );

  it('hands permitted addresses to the socket in the form it asked for', async () => {
    assert.deepEqual(await call(lookup, 'public', false), { error: null, address: '93.184.216.34', family: 4 });
    const all = await call(lookup, 'dual', true);
    assert.equal(all.error, null);
    assert.deepEqual(all.address, [{ address: '93.184.216.34', family: 4 }, { address: '2606:2800:220:1::1', family: 6 }]);
  });

  it('fails the connection when any resolved address is denied, before it is opened', async () => {
    for (const host of ['rebind', 'mapped']) {
      for (const all of [false, true]) {
        const { error } = await call(lookup, host, all);
        assert.equal(error?.code, 'REFUSED', `${host} all=${all}`);
      }
    }
    assert.match((await call(lookup, 'rebind', false)).error!.message, /169\.254\.169\.254/);
    assert.equal((await call(lookup, 'nowhere', false)).error?.code, 'ENOTFOUND');
  });

  it('guards real resolution: localhost is loopback', async () => {
    const { error } = await call(guardedLookup(new AddressPolicy(), refuse), 'localhost', false);
    assert.equal(error?.code, 'REFUSED');
  });
});

describe('redactUrl', () => {
  it('keeps scheme, host, port and path; drops userinfo, query and fragment', () => {
    assert.equal(redactUrl('https://user:pass@bucket.s3.example:8443/a/b.tar?X-Amz-Signature=secret&X-Amz-Credential=c#frag'), 'https://bucket.s3.example:8443/a/b.tar');
    assert.equal(redactUrl(new URL('http://token@[::1]/x?y')), 'http://[::1]/x');
    assert.equal(redactUrl('not a url?token=secret'), '(invalid URL)');
  });
});
