import { once } from 'node:events';
import type { handleServerStreamingCall, ServerWritableStream } from '@grpc/grpc-js';
import type { BackupManifest, BackupStore } from '../content/backup-store.js';
import { parseSnapshotName } from '../content/backup-store.js';
import { WsdError, failureLogLevel, toWsdError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { assertValidKeySegment } from '../workspace/workspace-record.js';
import type { ExportBackupChunk } from './generated/wsd/v1/ExportBackupChunk.js';
import type { ExportBackupRequest__Output } from './generated/wsd/v1/ExportBackupRequest.js';
import { toServiceError } from './grpc-status.js';

/** gRPC's default limit for a message a client accepts is 4 MiB; 1 MiB pieces stay far below it. */
const maxChunkBytes = 1024 * 1024;

export type ExportSource = Pick<BackupStore, 'backup' | 'latestBackup' | 'snapshot' | 'exportArchive'>;

/**
 * `AdminService.ExportBackup`: the archive a request names, as a stream of messages — first its `BackupInfo`, then
 * its bytes. Writes wait for the client to take them (no whole archive in memory). An error before the first byte
 * is the call's status; an error after (a corrupt archive, storage failing) ends the call with that status, so a
 * client never mistakes a partial archive for a whole one. A client that goes away stops the read from storage.
 */
export function exportBackupHandler(backups: ExportSource, log: Logger): handleServerStreamingCall<ExportBackupRequest__Output, ExportBackupChunk> {
  return (call: ServerWritableStream<ExportBackupRequest__Output, ExportBackupChunk>) => {
    const abort = new AbortController();
    call.once('cancelled', () => abort.abort());
    void (async () => {
      let manifest: BackupManifest | undefined;
      try {
        manifest = await findArchive(backups, call.request);
        const archive = await backups.exportArchive(manifest, abort.signal);
        call.write({ archive: { url: manifest.object, size_bytes: manifest.size, created_at: manifest.createdAt } });
        for await (const chunk of archive) {
          const bytes = chunk as Buffer;
          for (let offset = 0; offset < bytes.length; offset += maxChunkBytes) {
            if (!call.write({ data: bytes.subarray(offset, offset + maxChunkBytes) })) await once(call, 'drain', { signal: abort.signal });
          }
        }
        call.end();
      } catch (error) {
        if (abort.signal.aborted) {
          log.debug('export ended: the client went away', { archive: manifest?.object });
          return;
        }
        const wsd = toWsdError(error, 'INTERNAL', 'exporting a backup');
        log[failureLogLevel(wsd)]('export failed', { method: 'ExportBackup', archive: manifest?.object, code: wsd.code, error: wsd });
        call.emit('error', toServiceError(wsd));
      }
    })();
  };
}

/**
 * The manifest a request names, every field checked as the other admin calls check it: a snapshot by name (its
 * owner and meta id must match the request's when given), else a backup of owner + meta_id by key, else the current
 * one.
 */
async function findArchive(backups: ExportSource, request: ExportBackupRequest__Output): Promise<BackupManifest> {
  const { owner, meta_id: metaId, backup, snapshot } = request;
  if (snapshot && backup) throw new WsdError('INVALID_ARGUMENT', 'give backup or snapshot, not both', { field: 'snapshot' });
  if (snapshot) {
    const named = parseSnapshotName(snapshot);
    assertValidKeySegment(named.owner, 'snapshot');
    assertValidKeySegment(named.metaId, 'snapshot');
    if (owner && owner !== named.owner) throw new WsdError('INVALID_ARGUMENT', `snapshot ${snapshot} belongs to owner ${named.owner}, not ${owner}`, { field: 'owner' });
    if (metaId && metaId !== named.metaId) throw new WsdError('INVALID_ARGUMENT', `snapshot ${snapshot} belongs to workspace ${named.metaId}, not ${metaId}`, { field: 'meta_id' });
    return backups.snapshot(snapshot);
  }
  assertValidKeySegment(owner, 'owner');
  assertValidKeySegment(metaId, 'meta_id');
  const target = { owner, metaId };
  if (backup) return backups.backup(target, backup);
  const latest = await backups.latestBackup(target);
  if (!latest) throw new WsdError('NOT_FOUND', `workspace ${metaId} (owner ${owner}) has no backup`);
  return latest;
}
