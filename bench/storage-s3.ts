// Put/get throughput of storage/s3 against a local MinIO, next to the same MinIO driven by the minio SDK directly
// (putObject of a stream / getObject), same run, as ratios. Never run by the test command.
// Run: npm run build && node dist/bench/storage-s3.js [MiB] [rounds]   (defaults 1024 MiB, 2 rounds, interleaved)
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { startMinio } from '../test/kit/servers/minio.js';
import { tempDir } from '../test/kit/temp-dir.js';
import { s3ConfigSchema } from '../plugins/storage/s3/s3-config.js';
import { S3StorageBackend } from '../plugins/storage/s3/s3-storage-backend.js';

const mib = Number(process.argv[2] ?? 1024);
const rounds = Number(process.argv[3] ?? 2);
// One random MiB repeated: the source must cost nothing next to the transfer being measured (and random bytes keep
// any compression out of it).
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

async function time(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return mib / (Number(process.hrtime.bigint() - start) / 1e9);
}

// The data folder on the same disk the daemon would use (/tmp here), not tmpfs: a real server writes to disk.
const minio = await startMinio({ dataDir: tempDir('wsd-bench-minio-') });
try {
  const config = s3ConfigSchema.parse({ ...minio.storageConfig });
  const backend = new S3StorageBackend({ config });
  await backend.start();
  const client = minio.client();
  const { bucket } = minio.storageConfig;
  const results: Record<string, number[]> = { 'sdk put': [], 'wsd put': [], 'sdk get': [], 'wsd get': [] };
  for (let round = 0; round < rounds; round++) {
    // Interleaved, so that a noisy neighbour slows both sides alike.
    results['sdk put']!.push(await time(() => client.putObject(bucket, 'bench/sdk.bin', source())));
    results['wsd put']!.push(await time(() => backend.put({ key: 'bench/wsd.bin', body: source() })));
    results['sdk get']!.push(await time(async () => drain(await client.getObject(bucket, 'bench/sdk.bin'))));
    results['wsd get']!.push(await time(async () => drain((await backend.get({ key: 'bench/wsd.bin' })).body)));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (const [label, rates] of Object.entries(results)) {
    console.log(`${label.padEnd(8)} ${rates.map((r) => `${r.toFixed(0).padStart(4)} MiB/s`).join('  ')}   median ${median(rates).toFixed(0)} MiB/s`);
  }
  console.log(
    `ratios (wsd / sdk, medians, ${mib} MiB, partSize ${config.partSize / 1024 / 1024} MiB x ${config.concurrency}): ` +
      `put ${(median(results['wsd put']!) / median(results['sdk put']!)).toFixed(2)}, get ${(median(results['wsd get']!) / median(results['sdk get']!)).toFixed(2)}`,
  );
  await backend.stop();
} finally {
  await minio.server.stop();
}
