import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { unlinkSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { BackupInfo__Output } from '../api/generated/wsd/v1/BackupInfo.js';
import type { ExportBackupChunk__Output } from '../api/generated/wsd/v1/ExportBackupChunk.js';
import { WsdError } from '../errors.js';

export interface ReceivedExport {
  archive: BackupInfo__Output | null;
  bytes: number;
  /** The file written; undefined for stdout. */
  file?: string;
}

/** `-o`: a file, or stdout for none or `-`. Refuses a terminal before anything is asked of the daemon. */
export function exportDestination(output: string | undefined): string | undefined {
  if (output !== undefined && output !== '-') return output;
  if (process.stdout.isTTY) {
    throw new WsdError('INVALID_ARGUMENT', 'refusing to write a binary archive to a terminal: give -o <file>, or redirect stdout (> file, | tar --zstd -x)');
  }
  return undefined;
}

/**
 * Writes an ExportBackup stream to `file` (or stdout when undefined). A file is written under a temporary name
 * beside it, flushed to disk and renamed only once the stream ended without an error: a failed or interrupted
 * export leaves no file that looks like an archive (the temporary one is removed, also on Ctrl-C). On stdout the
 * bytes go out as they come; a failure is the exit code and the message on stderr.
 */
export async function receiveExport(messages: AsyncIterable<ExportBackupChunk__Output>, file: string | undefined): Promise<ReceivedExport> {
  let archive: BackupInfo__Output | null = null;
  let bytes = 0;
  if (file === undefined) {
    for await (const message of messages) {
      archive ??= message.archive;
      if (message.data.length === 0) continue;
      bytes += message.data.length;
      if (!process.stdout.write(message.data)) await once(process.stdout, 'drain');
    }
    return { archive, bytes };
  }
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.partial`);
  const handle = await open(temporary, 'wx', 0o644).catch((error: NodeJS.ErrnoException) => {
    throw new WsdError('INVALID_ARGUMENT', `-o ${file}: cannot write there: ${error.message}`);
  });
  const interrupted = () => {
    try {
      unlinkSync(temporary);
    } finally {
      process.exit(130);
    }
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    for await (const message of messages) {
      archive ??= message.archive;
      if (message.data.length === 0) continue;
      bytes += message.data.length;
      await handle.write(message.data);
    }
    await handle.sync();
    await handle.close();
    await rename(temporary, file);
    return { archive, bytes, file };
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(temporary, { force: true });
    throw error;
  } finally {
    process.removeListener('SIGINT', interrupted);
    process.removeListener('SIGTERM', interrupted);
  }
}
