// Throughput of storage/local put/get against writing and reading the same bytes with plain fs streams.
// Run: npm run build && node dist/bench/storage-local.js [MiB]
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { LocalStorageBackend } from '../plugins/storage/local/local-storage-backend.js';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { tempDir } from '../test/kit/temp-dir.js';

const mib = Number(process.argv[2] ?? 512);
const dir = tempDir('wsd-bench-');
// One random MiB repeated: the source must cost nothing next to the I/O being measured.
const block = randomBytes(1024 * 1024);
const source = () => Readable.from((function* () {
  for (let i = 0; i < mib; i++) yield block;
})());

async function time(label: string, fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const rate = mib / seconds;
  console.log(`${label.padEnd(28)} ${seconds.toFixed(2)} s  ${rate.toFixed(0)} MiB/s`);
  return rate;
}

const drain = async (stream: AsyncIterable<unknown>) => {
  for await (const _ of stream);
};

const baselineFile = path.join(dir, 'baseline.bin');
const baseWrite = await time('fs write + fsync (baseline)', async () => {
  await pipeline(source(), createWriteStream(baselineFile));
  const handle = await open(baselineFile, 'r+');
  await handle.sync();
  await handle.close();
});
const baseRead = await time('fs read (baseline)', () => drain(createReadStream(baselineFile)));
await rm(baselineFile);

const backend = new LocalStorageBackend(path.join(dir, 'store'));
await backend.start();
const put = await time('storage/local put', () => backend.put({ key: 'bench/object.bin', body: source() }));
const get = await time('storage/local get', async () => drain((await backend.get({ key: 'bench/object.bin' })).body));
console.log(`ratios vs baseline: put ${(put / baseWrite).toFixed(2)}, get ${(get / baseRead).toFixed(2)} (${mib} MiB)`);
