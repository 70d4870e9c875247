import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { WsdError, isWsdError, toWsdError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { StorageBackend } from '../storage/storage-backend.js';
import { archiveFormat, createArchive, extractArchive } from './archive.js';
import { DigestStream } from './digest-stream.js';

export type ArchiveKind = 'backup' | 'snapshot';

/** Written next to every archive, and (for backups) as `backups/latest.json` once the archive is safely stored. */
export interface BackupManifest {
  version: 1;
  kind: ArchiveKind;
  /** Storage key of the archive. */
  object: string;
  /** Bytes of the archive as stored. */
  size: number;
  /** sha256 (hex) of the archive bytes; checked on restore. */
  sha256: string;
  format: typeof archiveFormat;
  createdAt: string;
  files: number;
  bytesUncompressed: number;
  /** The workspace (meta) id the archive belongs to. */
  workspaceId: string;
  owner: string;
  /** The instance that was archived. */
  instanceId: string;
}

export interface ArchiveTarget {
  owner: string;
  metaId: string;
  instanceId: string;
}

const archiveSuffix = '.tar.zst';
const manifestSuffix = '.manifest.json';

/**
 * Backups and snapshots in object storage, laid out as
 * `<owner>/workspaces/<metaId>/{backups,snapshots}/<time>-<nonce>.tar.zst` with a manifest beside each archive and
 * `backups/latest.json` naming the current backup.
 *
 * Nothing is ever overwritten in place: an archive goes to a new key, its manifest is written only after the archive
 * is complete, and `latest.json` is replaced last. A failure at any step leaves the previous backup current.
 */
export class BackupStore {
  readonly #storage: StorageBackend;
  readonly #log: Logger;

  constructor(storage: StorageBackend, log: Logger) {
    this.#storage = storage;
    this.#log = log;
  }

  /** A fresh, never-used key for an archive of `kind` (the name TakeSnapshot returns for snapshots). */
  newArchiveKey(target: Pick<ArchiveTarget, 'owner' | 'metaId'>, kind: ArchiveKind): string {
    const time = new Date().toISOString().replace(/[-:.]/g, '');
    return `${workspacePrefix(target)}${kind}s/${time}-${randomBytes(4).toString('hex')}${archiveSuffix}`;
  }

  /** Archives `dir` under `key` and commits it. Returns the manifest once the archive is current. */
  async write(target: ArchiveTarget, dir: string, kind: ArchiveKind, key = this.newArchiveKey(target, kind)): Promise<BackupManifest> {
    const archive = createArchive(dir);
    const digest = new DigestStream();
    archive.stream.once('error', (error) => digest.destroy(error)); // pipe() alone would leave the put waiting
    let stored = false;
    try {
      await this.#storage.put({ key, body: archive.stream.pipe(digest) });
      stored = true;
      const stats = await archive.done;
      if (stats.warnings.length > 0) this.#log.warn('files changed while archiving', { key, warnings: stats.warnings.slice(0, 5) });
      const manifest: BackupManifest = {
        version: 1,
        kind,
        object: key,
        size: digest.size,
        sha256: digest.sha256,
        format: archiveFormat,
        createdAt: new Date().toISOString(),
        files: stats.files,
        bytesUncompressed: stats.bytesUncompressed,
        workspaceId: target.metaId,
        owner: target.owner,
        instanceId: target.instanceId,
      };
      await this.#putJson(manifestKeyFor(key), manifest);
      if (kind === 'backup') await this.#putJson(latestKey(target), manifest);
      return manifest;
    } catch (error) {
      archive.stream.destroy();
      await archive.done.catch(() => {});
      if (stored) await this.#storage.delete({ key }).catch(() => {});
      throw toWsdError(error, 'UNAVAILABLE', `storing ${kind} ${key}`);
    }
  }

  /** The current backup of a workspace, or undefined when it has none. */
  async latestBackup(target: Pick<ArchiveTarget, 'owner' | 'metaId'>): Promise<BackupManifest | undefined> {
    try {
      return await this.#getJson(latestKey(target));
    } catch (error) {
      if (isWsdError(error, 'NOT_FOUND')) return undefined;
      throw error;
    }
  }

  /** The manifest of a snapshot by the name TakeSnapshot returned; NOT_FOUND when there is no such snapshot. */
  async snapshot(name: string): Promise<BackupManifest> {
    if (!/^[^/]+\/workspaces\/[^/]+\/snapshots\/[^/]+\.tar\.zst$/.test(name)) {
      throw new WsdError('INVALID_ARGUMENT', `snapshot name ${JSON.stringify(name)} is not one that TakeSnapshot returns`, { field: 'snapshot' });
    }
    try {
      return await this.#getJson(manifestKeyFor(name));
    } catch (error) {
      if (isWsdError(error, 'NOT_FOUND')) throw new WsdError('NOT_FOUND', `snapshot ${name} does not exist`);
      throw error;
    }
  }

  /** Every committed backup and snapshot of a workspace, oldest first. */
  async list(target: Pick<ArchiveTarget, 'owner' | 'metaId'>): Promise<{ backups: BackupManifest[]; snapshots: BackupManifest[] }> {
    const out = { backups: [] as BackupManifest[], snapshots: [] as BackupManifest[] };
    for await (const object of this.#storage.list({ prefix: workspacePrefix(target) })) {
      if (!object.key.endsWith(manifestSuffix)) continue;
      const manifest = await this.#getJson(object.key).catch(() => undefined);
      if (manifest) (manifest.kind === 'backup' ? out.backups : out.snapshots).push(manifest);
    }
    return out;
  }

  /**
   * Extracts the archive a manifest names into `dir`, checking size and sha256 of the bytes read: a mismatch is
   * `DATA_LOSS`. The caller wipes `dir` on failure.
   */
  async restore(manifest: BackupManifest, dir: string): Promise<void> {
    const { body } = await this.#storage.get({ key: manifest.object });
    const digest = new DigestStream();
    const verified = body.pipe(digest);
    body.once('error', (error) => verified.destroy(error));
    await extractArchive(verified, dir);
    if (digest.size !== manifest.size || digest.sha256 !== manifest.sha256) {
      throw new WsdError('DATA_LOSS', `archive ${manifest.object} is corrupt: expected ${manifest.size} bytes sha256 ${manifest.sha256}, read ${digest.size} bytes sha256 ${digest.sha256}`);
    }
  }

  async #putJson(key: string, value: unknown): Promise<void> {
    await this.#storage.put({ key, body: Buffer.from(`${JSON.stringify(value, null, 2)}\n`), contentType: 'application/json' });
  }

  async #getJson(key: string): Promise<BackupManifest> {
    const { body } = await this.#storage.get({ key });
    const chunks: Buffer[] = [];
    for await (const chunk of body as Readable) chunks.push(chunk as Buffer);
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as BackupManifest;
    } catch (error) {
      throw new WsdError('DATA_LOSS', `manifest ${key} is not valid JSON`, { cause: error });
    }
  }
}

export function workspacePrefix(target: Pick<ArchiveTarget, 'owner' | 'metaId'>): string {
  return `${target.owner}/workspaces/${target.metaId}/`;
}

const latestKey = (target: Pick<ArchiveTarget, 'owner' | 'metaId'>) => `${workspacePrefix(target)}backups/latest.json`;
const manifestKeyFor = (archiveKey: string) => archiveKey.slice(0, -archiveSuffix.length) + manifestSuffix;
