import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { WsdError, isWsdError, toWsdError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { StorageBackend } from '../storage/storage-backend.js';
import { archiveFormat, createArchive, extractArchive, type ExtractOptions } from './archive.js';
import { DigestStream } from './digest-stream.js';
import { Semaphore } from './semaphore.js';

export interface BackupStoreOptions {
  /** Backups kept per workspace (default 3); older ones are deleted only after a newer one is committed. */
  keep?: number;
  /** zstd level (default 1). */
  compressionLevel?: number;
  /** Archive writes at once on this node, across all workspaces (default 2). */
  maxConcurrent?: number;
  /** Ownership and special-file policy of restores. */
  extract?: ExtractOptions;
}

/** Archives without a manifest older than this are leftovers of interrupted uploads, and are deleted. */
const orphanAgeMs = 24 * 3600 * 1000;

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
  readonly #options: Required<Omit<BackupStoreOptions, 'extract' | 'maxConcurrent'>> & { extract: ExtractOptions };
  readonly #uploads: Semaphore;

  constructor(storage: StorageBackend, log: Logger, options: BackupStoreOptions = {}) {
    this.#storage = storage;
    this.#log = log;
    this.#options = { keep: options.keep ?? 3, compressionLevel: options.compressionLevel ?? 1, extract: options.extract ?? {} };
    this.#uploads = new Semaphore(options.maxConcurrent ?? 2);
  }

  /** A fresh, never-used key for an archive of `kind` (the name TakeSnapshot returns for snapshots). */
  newArchiveKey(target: Pick<ArchiveTarget, 'owner' | 'metaId'>, kind: ArchiveKind): string {
    const time = new Date().toISOString().replace(/[-:.]/g, '');
    return `${workspacePrefix(target)}${kind}s/${time}-${randomBytes(4).toString('hex')}${archiveSuffix}`;
  }

  /**
   * Archives `dir` under `key` and commits it; for backups, then deletes backups beyond `keep`. Returns the manifest
   * once the archive is current. `exclude` lists paths (relative to `dir`) left out of the archive.
   */
  write(target: ArchiveTarget, dir: string, kind: ArchiveKind, options: { key?: string; exclude?: string[] } = {}): Promise<BackupManifest> {
    return this.#uploads.run(() => this.#write(target, dir, kind, options.key ?? this.newArchiveKey(target, kind), options.exclude ?? []));
  }

  async #write(target: ArchiveTarget, dir: string, kind: ArchiveKind, key: string, exclude: string[]): Promise<BackupManifest> {
    const archive = createArchive(dir, { level: this.#options.compressionLevel, exclude });
    const digest = DigestStream.of(archive.stream);
    let stored = false;
    let manifestStored = false;
    let manifest: BackupManifest;
    try {
      await this.#storage.put({ key, body: digest });
      stored = true;
      const stats = await archive.done;
      if (stats.warnings.length > 0) this.#log.warn('files changed while archiving', { key, warnings: stats.warnings.slice(0, 5) });
      manifest = {
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
      manifestStored = true;
      if (kind === 'backup') await this.#putJson(latestKey(target), manifest);
    } catch (error) {
      archive.stream.destroy();
      await archive.done.catch(() => {});
      // Manifest first: no manifest may ever name a missing archive.
      if (manifestStored) await this.#storage.delete({ key: manifestKeyFor(key) }).catch(() => {});
      if (stored) await this.#storage.delete({ key }).catch(() => {});
      throw toWsdError(error, 'UNAVAILABLE', `storing ${kind} ${key}`);
    }
    if (kind === 'backup') {
      // The new backup is committed; pruning failures only cost storage, so they are logged, not thrown.
      await this.#prune(target, key).catch((error: unknown) => this.#log.warn('pruning old backups failed', { owner: target.owner, metaId: target.metaId, error: error as Error }));
    }
    return manifest;
  }

  /** Deletes backups beyond `keep` (manifest first, so no manifest ever names a missing archive) and old orphans. */
  async #prune(target: Pick<ArchiveTarget, 'owner' | 'metaId'>, current: string): Promise<void> {
    const prefix = `${workspacePrefix(target)}backups/`;
    const manifests: string[] = [];
    const archives: Array<{ key: string; modifiedAt: Date }> = [];
    for await (const object of this.#storage.list({ prefix })) {
      if (object.key.endsWith(manifestSuffix)) manifests.push(object.key);
      else if (object.key.endsWith(archiveSuffix)) archives.push(object);
    }
    // Keys start with a sortable UTC time, so key order is age order.
    manifests.sort();
    const expired = manifests.slice(0, Math.max(0, manifests.length - this.#options.keep)).filter((m) => m !== manifestKeyFor(current));
    for (const manifest of expired) {
      await this.#storage.delete({ key: manifest });
      await this.#storage.delete({ key: archiveKeyFor(manifest) });
    }
    const committed = new Set(manifests.map(archiveKeyFor));
    for (const archive of archives) {
      if (!committed.has(archive.key) && archive.key !== current && Date.now() - archive.modifiedAt.getTime() > orphanAgeMs) {
        this.#log.info('deleting an archive whose upload never completed', { key: archive.key });
        await this.#storage.delete({ key: archive.key });
      }
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
  async restore(manifest: BackupManifest, dir: string, signal?: AbortSignal): Promise<{ members: number }> {
    signal?.throwIfAborted();
    if (manifest.format !== archiveFormat) {
      throw new WsdError('FAILED_PRECONDITION', `archive ${manifest.object} has format ${JSON.stringify(manifest.format)}; this wsd reads ${archiveFormat}`);
    }
    const { body } = await this.#storage.get({ key: manifest.object, ...(signal ? { signal } : {}) });
    const digest = DigestStream.of(body);
    let result: { members: number };
    try {
      result = await extractArchive(digest, dir, this.#options.extract);
    } finally {
      body.destroy(); // a refused or failed restore must not leave the storage stream (file, socket) open
    }
    if (digest.size !== manifest.size || digest.sha256 !== manifest.sha256) {
      throw new WsdError('DATA_LOSS', `archive ${manifest.object} is corrupt: expected ${manifest.size} bytes sha256 ${manifest.sha256}, read ${digest.size} bytes sha256 ${digest.sha256}`);
    }
    return result;
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
const archiveKeyFor = (manifestKey: string) => manifestKey.slice(0, -manifestSuffix.length) + archiveSuffix;
