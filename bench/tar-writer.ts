// Throughput of the pax tar writer (core/content/tar-writer.ts) on an in-memory source, against the same bytes
// passed through a plain Readable (the cost of streaming alone), for large files and for many small ones.
// Run: npm run build && node dist/bench/tar-writer.js [MiB=1024] [rounds=3]
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { tarStream, type TarMember } from '../core/content/tar-writer.js';

const mib = Number(process.argv[2] ?? 1024);
const rounds = Number(process.argv[3] ?? 3);
// Random MiBs repeated: the source must cost nothing next to the writer being measured.
const block = randomBytes(1024 * 1024);

/** `mib` MiB as files of `fileBytes` each, data in chunks of at most 1 MiB. */
function members(fileBytes: number): AsyncGenerator<TarMember> {
  const count = Math.floor((mib * 1024 * 1024) / fileBytes);
  return (async function* () {
    yield { path: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: 1_700_000_000_000_000_000n };
    for (let i = 0; i < count; i++) {
      yield {
        path: `d${i % 100}/file-${i}`,
        type: 'file',
        mode: 0o644,
        uid: 1000,
        gid: 1000,
        mtimeNs: 1_700_000_000_123_456_789n + BigInt(i),
        size: fileBytes,
        data: () =>
          (async function* () {
            for (let left = fileBytes; left > 0; left -= block.length) yield left >= block.length ? block : block.subarray(0, left);
          })(),
      };
    }
  })();
}

function plain(): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < mib; i++) yield block;
    })(),
    { objectMode: false },
  );
}

/**
 * Reads in flowing mode, as pipe() and pipeline() feed zstd or a socket. (`for await` on a byte stream concatenates
 * whatever is buffered into one Buffer per read — a copy of every file — which measures the reader, not the writer.)
 */
async function measure(stream: Readable): Promise<{ seconds: number; bytes: number }> {
  const start = process.hrtime.bigint();
  let bytes = 0;
  stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
  await new Promise((resolve, reject) => stream.once('end', resolve).once('error', reject));
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, bytes };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const results: Record<string, number[]> = { 'plain Readable (baseline)': [], 'tar, 64 MiB files': [], 'tar, 1 MiB files': [], 'tar, 16 KiB files': [] };
for (let round = 0; round < rounds; round++) {
  // Interleaved, so a noisy neighbour slows every variant alike.
  results['plain Readable (baseline)']!.push(mib / (await measure(plain())).seconds);
  results['tar, 64 MiB files']!.push(mib / (await measure(tarStream(members(64 * 1024 * 1024)))).seconds);
  results['tar, 1 MiB files']!.push(mib / (await measure(tarStream(members(1024 * 1024)))).seconds);
  results['tar, 16 KiB files']!.push(mib / (await measure(tarStream(members(16 * 1024)))).seconds);
}
const baseline = median(results['plain Readable (baseline)']!);
console.log(`${mib} MiB of file data, ${rounds} interleaved rounds, medians; RSS now ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
for (const [label, rates] of Object.entries(results)) {
  const m = median(rates);
  console.log(`${label.padEnd(28)} ${m.toFixed(0).padStart(6)} MiB/s  (${rates.map((r) => r.toFixed(0)).join(', ')})  ratio ${(m / baseline).toFixed(2)}`);
}
