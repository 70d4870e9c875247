import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { DigestStream } from '../../../core/content/digest-stream.js';
import { createExclusive, insideFolder, makeRealFolders } from '../../../core/content/inside-folder.js';
import { WsdError } from '../../../core/errors.js';
import { retry, transientHttpStatus } from '../../../core/retry.js';
import type { ContentInitializer, InitializeOptions, InitializeResult } from '../../../core/initializer/content-initializer.js';

export interface DownloadSpec {
  files?: Array<{ url?: string; file_path?: string; digest?: string }>;
  target_location?: string;
}

export interface DownloadOptions {
  attempts: number;
  initialRetryDelayMs: number;
}

/**
 * Downloads files into the workspace: each to `target_location/file_path` (both kept inside the folder), written to
 * a temp file, checked against its `sha256:<hex>` digest, then renamed into place. Transient failures (network,
 * 5xx, 429) are retried with doubling delays; a digest mismatch is not.
 */
export class DownloadContentInitializer implements ContentInitializer<DownloadSpec> {
  readonly kind = 'download';
  readonly #options: DownloadOptions;

  constructor(options: DownloadOptions) {
    this.#options = options;
  }

  async initialize({ spec, dir, signal, log, user }: InitializeOptions<DownloadSpec>): Promise<InitializeResult> {
    const started = Date.now();
    const base = insideFolder(dir, spec.target_location ?? '', 'initializer.download.target_location');
    const files = (spec.files ?? []).map((file, i) => {
      const field = `initializer.download.files[${i}]`;
      if (!file.url) throw new WsdError('INVALID_ARGUMENT', `${field}.url is required`, { field: `${field}.url` });
      if (!file.file_path) throw new WsdError('INVALID_ARGUMENT', `${field}.file_path is required`, { field: `${field}.file_path` });
      const digest = /^sha256:([0-9a-f]{64})$/i.exec(file.digest ?? '');
      if (!digest) throw new WsdError('INVALID_ARGUMENT', `${field}.digest must be sha256:<64 hex digits>`, { field: `${field}.digest` });
      return { url: file.url, target: insideFolder(base, file.file_path, `${field}.file_path`), sha256: digest[1]!.toLowerCase(), field };
    });
    let bytes = 0;
    for (const file of files) {
      bytes += await this.#download(file, dir, signal, user);
      log.info('downloaded', { file: path.relative(dir, file.target), bytes });
    }
    return { source: 'from-other', stats: [{ kind: this.kind, durationMs: Date.now() - started, bytes }] };
  }

  async #download(file: { url: string; target: string; sha256: string; field: string }, dir: string, signal: AbortSignal, user?: { uid: number; gid: number }): Promise<number> {
    const blocked = await makeRealFolders(dir, path.dirname(file.target), user);
    if (blocked) {
      throw new WsdError('FAILED_PRECONDITION', `${file.field}.file_path: ${blocked} exists and is not a folder`, { field: `${file.field}.file_path` });
    }
    const tmp = `${file.target}.wsd-download`;
    const attempt = async (): Promise<number> => {
      const response = await fetch(file.url, { signal }).catch((error: Error) => {
        if (signal.aborted) throw error;
        throw new WsdError('UNAVAILABLE', `${file.field}: downloading ${file.url} failed: ${error.message}`, { field: `${file.field}.url` });
      });
      if (!response.ok || !response.body) {
        await response.body?.cancel();
        const code = transientHttpStatus(response.status) ? 'UNAVAILABLE' : 'FAILED_PRECONDITION';
        throw new WsdError(code, `${file.field}: downloading ${file.url} failed: HTTP ${response.status}`, { field: `${file.field}.url` });
      }
      const digest = new DigestStream();
      try {
        // Exclusive create, no link following: content cloned before (composite) may have planted a symlink here.
        const handle = await createExclusive(tmp, user);
        await pipeline(Readable.fromWeb(response.body as unknown as WebReadableStream), digest, handle.createWriteStream());
      } catch (error) {
        await rm(tmp, { force: true });
        if (signal.aborted) throw error;
        throw new WsdError('UNAVAILABLE', `${file.field}: downloading ${file.url} failed: ${(error as Error).message}`, { field: `${file.field}.url` });
      }
      if (digest.sha256 !== file.sha256) {
        await rm(tmp, { force: true });
        throw new WsdError('FAILED_PRECONDITION', `${file.field}: digest mismatch for ${file.url}: expected sha256:${file.sha256}, got sha256:${digest.sha256}`, { field: `${file.field}.digest` });
      }
      await rename(tmp, file.target);
      return digest.size;
    };
    return retry(attempt, { attempts: this.#options.attempts, initialDelayMs: this.#options.initialRetryDelayMs, signal });
  }
}
