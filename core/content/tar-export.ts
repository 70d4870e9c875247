import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { WsdError, isWsdError } from '../errors.js';
import { spawnTracked } from '../process/child-processes.js';
import { captureTail, exitOf } from './child-process.js';
import { tarStream, type TarMember } from './tar-writer.js';

/**
 * `members` as a plain `.tar.zst` that `tar --zstd -xf` extracts: {@link tarStream} through `zstd -1 -T0` (a spawned,
 * tracked zstd; level 1 because an export is read once, soon). For backups not stored as a tar.zst (the chunked
 * format): their tree's members in tree order go in, a file anyone can keep comes out.
 *
 * The stream ends only when every member was written, zstd compressed all of it and exited 0. Anything else — a
 * member refused or whose data does not match its size (`DATA_LOSS`, from the writer), a failing `data()` source,
 * zstd failing (`INTERNAL`), `signal` aborting (`CANCELLED`) — fails the stream instead: zstd would otherwise close a
 * valid frame over a truncated tar, and a reader would take half an archive for a whole one. Destroying the stream
 * ends zstd and stops reading `members`.
 */
export function exportTarZst(members: AsyncIterable<TarMember>, options: { signal?: AbortSignal } = {}): Readable {
  const output = new PassThrough();
  const tar = tarStream(members);
  const zstd = spawnTracked('zstd', ['-q', '-1', '-T0', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const zstdErr = captureTail(zstd.stderr);
  const exited = exitOf(zstd, 'zstd');
  let failed = false;
  const fail = (error: unknown) => {
    if (failed) return;
    failed = true;
    zstd.kill('SIGKILL');
    tar.destroy();
    output.destroy(
      isWsdError(error)
        ? error
        : options.signal?.aborted
          ? new WsdError('CANCELLED', 'exporting an archive: cancelled', { cause: error })
          : new WsdError('INTERNAL', `exporting an archive: ${(error as Error)?.message ?? String(error)}`, { cause: error }),
    );
  };
  // zstd's output goes on until both the tar stream and zstd are known to have succeeded; only then does it end.
  zstd.stdout!.pipe(output, { end: false });
  const fed = pipeline(tar, zstd.stdin!);
  fed.catch(fail); // at once: zstd must not get to finish its frame over a tar stream that failed
  Promise.all([fed, exited, once(zstd.stdout!, 'end')]).then(([, code]) => {
    if (failed) return;
    if (code !== 0) fail(new WsdError('INTERNAL', `exporting an archive: zstd failed (exit ${code}): ${zstdErr()}`));
    else output.end();
  }, fail);
  output.once('close', () => {
    // A reader that gave up must not leave zstd running or the members being read.
    if (!output.readableEnded) fail(new WsdError('CANCELLED', 'exporting an archive: the reader went away'));
  });
  const signal = options.signal;
  if (signal) {
    const onAbort = () => fail(new WsdError('CANCELLED', 'exporting an archive: cancelled'));
    if (signal.aborted) onAbort();
    else {
      signal.addEventListener('abort', onAbort, { once: true });
      output.once('close', () => signal.removeEventListener('abort', onAbort));
    }
  }
  return output;
}
