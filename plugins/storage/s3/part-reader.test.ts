import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { PartReader, multipartEtag, partSizeFor } from './part-reader.js';

const mib = 1024 * 1024;

describe('storage/s3 parts', () => {
  it('cuts a stream into parts of the asked sizes and knows which one is last', async () => {
    const reader = new PartReader(Readable.from([Buffer.from('abc'), Buffer.from('defgh'), Buffer.from(''), Buffer.from('ij')]));
    assert.deepEqual(await next(reader, 4), ['abcd', false]);
    assert.deepEqual(await next(reader, 4), ['efgh', false]);
    assert.deepEqual(await next(reader, 4), ['ij', true]);
    assert.equal(reader.bytesRead, 10);
    const exact = new PartReader(Readable.from([Buffer.from('abcd')]));
    assert.deepEqual(await next(exact, 4), ['abcd', true], 'a body of exactly one part is that part');
    const empty = new PartReader(Readable.from([]));
    assert.deepEqual(await next(empty, 4), ['', true]);
    const buffer = new PartReader(new Uint8Array([1, 2, 3]));
    assert.deepEqual((await buffer.next(2)).data, Buffer.from([1, 2]));
  });

  it('destroys a stream body when closed early, and passes its error on', async () => {
    const body = new Readable({ read() { this.push(Buffer.alloc(10)); } });
    const reader = new PartReader(body);
    await reader.next(15);
    await reader.close();
    assert.ok(body.destroyed);
    const failing = new PartReader(new Readable({ read() { this.destroy(new Error('broken source')); } }));
    await assert.rejects(failing.next(4), /broken source/);
  });

  it('sizes parts from the hint, or grows them so an unannounced stream fits in 10 000 parts', () => {
    assert.equal(partSizeFor(1, 16 * mib, undefined), 16 * mib);
    assert.equal(partSizeFor(2000, 16 * mib, undefined), 16 * mib);
    assert.equal(partSizeFor(2001, 16 * mib, undefined), 32 * mib);
    assert.equal(partSizeFor(10_000, 16 * mib, undefined), 256 * mib);
    let total = 0;
    for (let n = 1; n <= 10_000; n++) total += partSizeFor(n, 16 * mib, undefined);
    assert.ok(total > 900 * 1024 ** 3, `10 000 parts hold ${Math.round(total / 1024 ** 3)} GiB`);
    assert.equal(partSizeFor(1, 16 * mib, 100 * mib), 16 * mib, 'a small hint keeps the configured size');
    const hinted = partSizeFor(1, 16 * mib, 1024 ** 4);
    assert.ok(hinted * 9_000 >= 1024 ** 4 && hinted % mib === 0, 'a 1 TiB hint fits in 9 000 whole-MiB parts');
    assert.equal(partSizeFor(10_000, 5 * 1024 * mib, undefined), 5 * 1024 * mib, 'never above 5 GiB');
  });

  it('computes the ETag S3 gives a multipart object', () => {
    const md5 = (s: string) => createHash('md5').update(s).digest('hex');
    const parts = [md5('part one'), md5('part two')];
    const expected = createHash('md5').update(Buffer.concat(parts.map((p) => Buffer.from(p, 'hex')))).digest('hex');
    assert.equal(multipartEtag(parts), `${expected}-2`);
    assert.equal(multipartEtag(['not-an-md5']), undefined);
  });
});

async function next(reader: PartReader, size: number): Promise<[string, boolean]> {
  const part = await reader.next(size);
  return [part.data.toString(), part.last];
}
