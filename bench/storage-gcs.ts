// Throughput of storage/gcs put/get against the same fake-gcs-server driven by @google-cloud/storage directly
// (resumable upload in chunks of the same size, a plain read stream), in the same run.
// Run: npm run build && node dist/bench/storage-gcs.js [MiB=1024] [chunk MiB=32] [backend=filesystem|memory]
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Storage } from '@google-cloud/storage';
import { GcsStorageBackend } from '../plugins/storage/gcs/gcs-storage-backend.js';
import { startFakeGcs } from '../test/kit/servers/fake-gcs.js';

const mib = Number(process.argv[2] ?? 1024);
const chunkSize = Number(process.argv[3] ?? 32) * 1024 * 1024;
const backendKind = (process.argv[4] ?? 'filesystem') as 'filesystem' | 'memory';
// One random MiB repeated: the source must cost nothing next to the transfer being measured.
const block = randomBytes(1024 * 1024);
const source = () =>
  Readable.from(
    (function* () {
      for (let i = 0; i < mib; i++) yield block;
    })(),
  );

async function time(label: string, fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const rate = mib / seconds;
  console.log(`${label.padEnd(36)} ${seconds.toFixed(2)} s  ${rate.toFixed(0)} MiB/s`);
  return rate;
}

const drain = async (stream: AsyncIterable<unknown>) => {
  for await (const _ of stream);
};

const gcs = await startFakeGcs({ backend: backendKind });
console.log(`fake-gcs-server (${backendKind} backend), ${mib} MiB, ${chunkSize / 1024 / 1024} MiB chunks`);
try {
  const sdk = new Storage({ apiEndpoint: gcs.server.endpoint, projectId: 'wsd-test' }).bucket(gcs.bucket);
  const plugin = new GcsStorageBackend({ ...gcs.storageConfig, chunkSize });
  await plugin.start();

  const sdkPut = await time('SDK createWriteStream (resumable)', () => pipeline(source(), sdk.file('bench/sdk.bin').createWriteStream({ resumable: true, chunkSize })));
  const pluginPut = await time('storage/gcs put', () => plugin.put({ key: 'bench/plugin.bin', body: source() }));
  const sdkGet = await time('SDK createReadStream', () => drain(sdk.file('bench/sdk.bin').createReadStream()));
  const pluginGet = await time('storage/gcs get', async () => drain((await plugin.get({ key: 'bench/plugin.bin' })).body));
  console.log(`ratios plugin/SDK: put ${(pluginPut / sdkPut).toFixed(2)}, get ${(pluginGet / sdkGet).toFixed(2)}`);
  await plugin.stop();
} finally {
  await gcs.server.stop();
}
