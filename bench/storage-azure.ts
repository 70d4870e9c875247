// Throughput of storage/azure put/get against the same Azurite driven by @azure/storage-blob directly (uploadStream
// with the same block size and concurrency, download of the whole blob), in the same run.
// Run: npm run build && node dist/bench/storage-azure.js [MiB] [rounds]
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { azureConfigSchema } from '../plugins/storage/azure/azure-config.js';
import { AzureStorageBackend } from '../plugins/storage/azure/azure-storage-backend.js';
import { startAzurite } from '../test/kit/servers/azurite.js';

const mib = Number(process.argv[2] ?? 1024);
const rounds = Number(process.argv[3] ?? 1);
const blockSize = 8 * 1024 * 1024;
const concurrency = 4;
// One random MiB repeated: the source must cost nothing next to the transfer being measured.
const block = randomBytes(1024 * 1024);
const source = () =>
  Readable.from(
    (function* () {
      for (let i = 0; i < mib; i++) yield block;
    })(),
  );
const drain = async (stream: AsyncIterable<unknown>) => {
  for await (const _ of stream);
};

async function time(label: string, fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const rate = mib / seconds;
  console.log(`${label.padEnd(34)} ${seconds.toFixed(2)} s  ${rate.toFixed(0)} MiB/s`);
  return rate;
}

const azurite = await startAzurite();
try {
  const container = azurite.service.getContainerClient(azurite.storageConfig.container);
  const backend = new AzureStorageBackend(azureConfigSchema.parse({ ...azurite.storageConfig, blockSize, concurrency, abortUploadsOlderThan: 0 }));
  await backend.start();
  const ratios: string[] = [];
  for (let round = 1; round <= rounds; round++) {
    // Interleaved, so a slow phase of the shared disk hits both sides alike.
    const sdkPut = await time('SDK uploadStream (baseline)', () => container.getBlockBlobClient('bench/sdk.bin').uploadStream(source(), blockSize, concurrency));
    const put = await time('storage/azure put', () => backend.put({ key: 'bench/plugin.bin', body: source() }));
    const sdkGet = await time('SDK download (baseline)', async () => drain((await container.getBlockBlobClient('bench/sdk.bin').download()).readableStreamBody!));
    const get = await time('storage/azure get', async () => drain((await backend.get({ key: 'bench/plugin.bin' })).body));
    ratios.push(`round ${round}: put ${(put / sdkPut).toFixed(2)}, get ${(get / sdkGet).toFixed(2)}`);
    await container.getBlobClient('bench/sdk.bin').delete();
    await backend.delete({ key: 'bench/plugin.bin' });
  }
  console.log(`ratios vs the SDK on the same Azurite (${mib} MiB, ${blockSize / 1024 / 1024} MiB blocks, ${concurrency} at once):\n  ${ratios.join('\n  ')}`);
  await backend.stop();
} finally {
  await azurite.server.stop();
}
