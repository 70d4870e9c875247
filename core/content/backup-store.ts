import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { lstat, mkdir, open, readdir, rename, rm, rmdir, stat, chmod, chown, utimes, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { WsdError, isWsdError, toWsdError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { PutOptions, StorageBackend } from '../storage/storage-backend.js';
import type { ArchiveManifest, ArchiveService } from '../initializer/archive-service.js';
import type { ProgressReporter } from '../initializer/content-initializer.js';
import { archiveFormat, createArchive, extractArchive, type ExtractOptions } from './archive.js';
import { DigestStream, VerifiedStream } from './digest-stream.js';
import { Semaphore } from './semaphore.js';
import { ChunkIndexStore, type IndexedPack } from './repository/chunk-index.js';
import { GarbageCollector } from './repository/garbage-collector.js';
import { PackWriter } from './repository/pack-writer.js';
import { readBounded } from './repository/read-bounded.js';
import { packIdOf, packsPrefix } from './repository/repository-layout.js';
import { RepositoryLocks } from './repository/repository-locks.js';
import { buildTree } from './repository/tree-builder.js';
import { NonUtf8NameError, scanTree } from './repository/tree-scanner.js';
import { TreeCache } from './repository/tree-cache.js';
import { readChunk, restoreTree, type RootMetadata } from './repository/tree-restorer.js';
import { exportTarZst } from './tar-export.js';
import type { TarMember } from './tar-writer.js';
import { decodeTree, encodeTree, isHexId, maxTreeJsonBytes, zstdBound, type Tree } from './repository/tree.js';
import { compressFrame, decompressFrame } from './repository/zstd-frames.js';

export interface BackupStoreOptions {
  /** Backups kept per workspace (default 3); older ones are deleted only after a newer one is committed. */
  keep?: number;
  /** zstd level (default 1). */
  compressionLevel?: number;
  /** Archive writes at once on this node, across all workspaces (default 2). */
  maxConcurrent?: number;
  /** Ownership, special-file and setuid policy of restores. */
  extract?: ExtractOptions;
  /**
   * Key that authenticates manifests (HMAC-SHA256): every manifest written carries `hmac`, and a manifest read
   * without a valid one is refused — an object planted in storage by someone without the key restores nothing.
   */
  hmacKey?: Buffer;
  /** With `hmacKey`: still accept manifests without `hmac` (written before the key was set), with a warning. */
  acceptUnsignedManifests?: boolean;
  /**
   * What new backups and snapshots are written as (default `chunks`, ADR 0007): `chunks` stores only what changed,
   * deduplicated across an owner's workspaces; `tar` writes a whole `tar+zstd` archive each time (ADR 0003). Both
   * restore either way.
   */
  format?: 'chunks' | 'tar';
  /** Node-local cache of trees and index objects (chunked backups read unchanged files only with it). */
  cacheDir?: string;
  /** Unreferenced packs younger than this are kept by garbage collection (default 1 hour). */
  gcGraceMs?: number;
  /**
   * Least time between two garbage collections of one owner's packs from this node (default 1 hour): a collection
   * reads every manifest of the owner, too much to do after every backup of a busy owner.
   */
  gcIntervalMs?: number;
}

/** Archives without a manifest older than this are leftovers of interrupted uploads, and are deleted. */
const orphanAgeMs = 24 * 3600 * 1000;
/** Read-compare-swap rounds on `latest.json` before giving up; each lost round means another backup moved it. */
const latestAttempts = 5;

export type ArchiveKind = 'backup' | 'snapshot';

/** Written next to every archive, and (for backups) as `backups/latest.json` once the archive is safely stored. */
export type BackupManifest = ArchiveManifest;

export interface ArchiveTarget {
  owner: string;
  metaId: string;
  instanceId: string;
}

const archiveSuffix = '.tar.zst';
const treeSuffix = '.tree.zst';
const objectSuffixes = [archiveSuffix, treeSuffix];
/** A manifest is a few hundred bytes plus 67 per pack a chunked backup references (~120k packs, ~2 TB, fit). */
const maxManifestBytes = 8 * 1024 * 1024;
const manifestSuffix = '.manifest.json';
/** The format of chunked backups' manifests (version 2). */
export const treeFormat = 'wsd-tree';

/**
 * Backups and snapshots in object storage, laid out as
 * `<owner>/workspaces/<metaId>/{backups,snapshots}/<time>-<nonce>.tar.zst` with a manifest beside each archive and
 * `backups/latest.json` naming the current backup.
 *
 * Nothing is ever overwritten in place: an archive goes to a new key, its manifest is written only after the archive
 * is complete, and `latest.json` is replaced last. A failure at any step leaves the previous backup current.
 *
 * Several nodes may back up one workspace (all instances of a workspace share its backups, and a disposal resumed
 * after a restart may finish late): `latest.json` only ever moves to a newer backup, by compare-and-swap on its
 * etag (ADR 0005). "Newer" is key order: backup keys start with a sortable UTC time. A backup that finds a newer one
 * already current stays as an older backup (kept or pruned by `keep`); that is not an error.
 */
export class BackupStore implements ArchiveService {
  readonly #storage: StorageBackend;
  readonly #log: Logger;
  readonly #options: Required<Pick<BackupStoreOptions, 'keep' | 'compressionLevel'>> & { extract: ExtractOptions };
  readonly #hmacKey: Buffer | undefined;
  readonly #acceptUnsigned: boolean;
  readonly #uploads: Semaphore;
  readonly #format: 'chunks' | 'tar';
  readonly #indexes: ChunkIndexStore;
  readonly #trees: TreeCache | undefined;
  readonly #collector: GarbageCollector;
  readonly #gcIntervalMs: number;
  /** When this node last collected each owner's packs. */
  readonly #collected = new Map<string, number>();

  constructor(storage: StorageBackend, log: Logger, options: BackupStoreOptions = {}) {
    this.#format = options.format ?? 'chunks';
    this.#indexes = new ChunkIndexStore(storage, log, { ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}), ...(options.hmacKey ? { hmacKey: options.hmacKey } : {}) });
    this.#trees = options.cacheDir ? new TreeCache(options.cacheDir) : undefined;
    this.#gcIntervalMs = options.gcIntervalMs ?? 60 * 60 * 1000;
    this.#collector = new GarbageCollector(storage, log, this.#indexes, { ...(options.gcGraceMs !== undefined ? { graceMs: options.gcGraceMs } : {}) });
    this.#storage = storage;
    this.#log = log;
    this.#options = { keep: options.keep ?? 3, compressionLevel: options.compressionLevel ?? 1, extract: options.extract ?? {} };
    this.#uploads = new Semaphore(options.maxConcurrent ?? 2);
    this.#hmacKey = options.hmacKey;
    this.#acceptUnsigned = options.acceptUnsignedManifests ?? false;
  }

  /**
   * Whether new backups are chunked: such a backup finds an unchanged tree itself (from the node's cached tree, at a
   * stat per file) and stores nothing, so callers need no fingerprint of their own.
   */
  get detectsUnchanged(): boolean {
    return this.#format === 'chunks';
  }

  /** A fresh, never-used key for an archive of `kind` (the name TakeSnapshot returns for snapshots). */
  newArchiveKey(target: Pick<ArchiveTarget, 'owner' | 'metaId'>, kind: ArchiveKind): string {
    const time = new Date().toISOString().replace(/[-:.]/g, '');
    return `${workspacePrefix(target)}${kind}s/${time}-${randomBytes(4).toString('hex')}${this.#format === 'chunks' ? treeSuffix : archiveSuffix}`;
  }

  /**
   * Archives `dir` under `key` and commits it; for backups, then deletes backups beyond `keep`. Returns the manifest
   * once the archive is current. `exclude` lists paths (relative to `dir`) left out of the archive.
   */
  write(target: ArchiveTarget, dir: string, kind: ArchiveKind, options: { key?: string; exclude?: string[]; progress?: ProgressReporter; signal?: AbortSignal } = {}): Promise<BackupManifest> {
    const progress = options.progress ?? (() => {});
    progress({ phase: 'waiting for an upload slot' });
    const key = options.key ?? this.newArchiveKey(target, kind);
    return this.#uploads.run(async () => {
      if (!key.endsWith(treeSuffix)) return this.#write(target, dir, kind, key, options.exclude ?? [], progress);
      try {
        return await this.#writeChunked(target, dir, kind, key, options.exclude ?? [], progress, { skipIfUnchanged: options.key === undefined, signal: options.signal });
      } catch (error) {
        if (!((error as WsdError).cause instanceof NonUtf8NameError)) throw error;
        // GNU tar carries names as bytes: such a workspace is archived whole rather than losing a file.
        this.#log.warn('a file name is not valid UTF-8: this backup is a tar archive', { key, reason: ((error as WsdError).cause as Error).message });
        return this.#write(target, dir, kind, baseOf(key) + archiveSuffix, options.exclude ?? [], progress);
      }
    });
  }

  /**
   * A chunked backup (ADR 0007): under a shared repository lock, reads the owner's index and this node's tree of the
   * previous backup, builds the new tree (reading only changed files, uploading only new chunks, in packs), stores
   * the packs' index entries, checks that every pack the tree names exists, then the tree object and the manifest;
   * the lock goes once the manifest references what the backup uses. Then the same commit as archives. A backup
   * whose tree is identical to the current backup's stores nothing and returns the current manifest (unless a key
   * was given: a final backup must exist under that key).
   */
  async #writeChunked(target: ArchiveTarget, dir: string, kind: ArchiveKind, key: string, exclude: string[], progress: ProgressReporter, options: { skipIfUnchanged: boolean; signal?: AbortSignal | undefined }): Promise<BackupManifest> {
    const signal = options.signal;
    const manifestKey = manifestKeyFor(key);
    let stored = false;
    let manifestStored = false;
    let manifest: BackupManifest;
    let built: Awaited<ReturnType<typeof buildTree>>;
    let treeSha: string;
    try {
      // The scan runs in a thread of its own while the lock is taken and the index and the cached tree are read.
      progress({ phase: 'scanning', bytes: 0, files: 0 });
      const scanned = scanTree(dir, { exclude });
      scanned.catch(() => {}); // awaited in buildTree; a failure before that must not go unhandled
      const lock = await new RepositoryLocks(this.#storage, target.owner).shared(signal);
      try {
        const [index, previous, packSizes] = await Promise.all([this.#indexes.load(target.owner, signal), this.#trees?.read(target.owner, target.metaId), this.#packSizes(target.owner)]);
        // Under the shared lock no pack goes away: what is listed now stays until the manifest references it.
        index.retainStored(packSizes);
        // Progress bytes are bytes stored, as for archives: what this backup costs (files: as they are read).
        const packs = new PackWriter(this.#storage, target.owner, { ...(signal ? { signal } : {}), onUploaded: (bytes) => progress({ bytes }) });
        built = await buildTree({ root: dir, exclude, index, packs, previous, level: this.#options.compressionLevel, signal, progress, scanned });
        if (built.warnings.length > 0) this.#log.warn('files changed while backing up', { key, warnings: built.warnings.slice(0, 5) });
        const json = Buffer.from(encodeTree(built.tree));
        if (json.length > maxTreeJsonBytes) throw new WsdError('FAILED_PRECONDITION', `the tree of ${dir} is ${json.length} bytes of JSON, more than a restore reads (${maxTreeJsonBytes}); use backup.format: tar for it`);
        // What a restore will check, checked now: a tree the reader refuses (an entry past its bounds) is never committed.
        decodeTree(json.toString('utf8'), `the tree of ${key}`);
        treeSha = createHash('sha256').update(json).digest('hex');
        if (kind === 'backup' && options.skipIfUnchanged && previous?.sha256 === treeSha) {
          const latest = await this.latestBackup(target).catch(() => undefined);
          if (latest?.object === previous.object) {
            progress({ phase: 'unchanged since the last backup', bytes: 0, files: built.tree.entries.length });
            return latest;
          }
        }
        progress({ phase: 'committing', files: built.tree.entries.length });
        let uploadedBytes = packs.uploadedBytes;
        if (packs.sealed.length > 0) {
          const indexed: IndexedPack[] = packs.sealed.map((p) => ({ id: p.id!, size: p.size, chunks: p.chunks.map((c) => ({ id: c.id, offset: c.offset, stored: c.stored, raw: c.raw, encoding: c.encoding })) }));
          await this.#indexes.write(target.owner, indexed, signal);
        }
        for (const pack of packs.sealed) packSizes.set(pack.id!, pack.size);
        assertPacksStored(built.tree, packSizes);
        const body = await compressFrame(json, 3);
        uploadedBytes += body.length;
        await this.#storage.put({ key, body, contentType: 'application/zstd', ...(signal ? { signal } : {}) });
        stored = true;
        progress({ bytes: uploadedBytes });
        manifest = this.#sign({
          version: 2,
          kind,
          object: key,
          size: body.length,
          sha256: createHash('sha256').update(body).digest('hex'),
          format: treeFormat,
          createdAt: new Date().toISOString(),
          files: built.tree.entries.length,
          bytesUncompressed: built.dataBytes,
          treeBytes: json.length,
          packs: built.tree.packs,
          uploadedBytes,
          workspaceId: target.metaId,
          owner: target.owner,
          instanceId: target.instanceId,
        });
        await this.#putJson(manifestKey, manifest);
        manifestStored = true;
      } finally {
        await lock.release();
      }
      if (kind === 'backup') await this.#commitLatest(target, manifest);
    } catch (error) {
      const removable = !manifestStored || (await this.#latestNamesOther(target, key));
      if (removable) {
        if (manifestStored) await this.#storage.delete({ key: manifestKey }).catch(() => {});
        if (stored) await this.#storage.delete({ key }).catch(() => {});
      } else {
        this.#log.warn('kept a backup whose latest.json update failed: it may be current', { key, owner: target.owner, metaId: target.metaId });
      }
      // New packs stay: unreferenced, they are garbage collection's (and a retry finds their chunks in the index).
      throw toWsdError(error, 'UNAVAILABLE', `storing ${kind} ${key}`);
    }
    if (kind === 'backup') {
      await this.#trees?.write(target.owner, target.metaId, { object: key, sha256: treeSha, tree: built.tree, stats: built.stats }).catch((error: unknown) => this.#log.warn('cannot write the backup tree cache', { error: error as Error }));
      await this.#prune(target, key).catch((error: unknown) => this.#log.warn('pruning old backups failed', { owner: target.owner, metaId: target.metaId, error: error as Error }));
    }
    return manifest;
  }

  /** Every pack of `owner` with its size (one listing per ~1000 packs). */
  async #packSizes(owner: string): Promise<Map<string, number>> {
    const sizes = new Map<string, number>();
    for await (const object of this.#storage.list({ prefix: packsPrefix(owner) })) {
      const id = packIdOf(object.key, owner);
      if (id) sizes.set(id, object.size);
    }
    return sizes;
  }

  /**
   * Deletes packs of `owner` that no committed backup or snapshot references (garbage-collector.ts). Opportunistic:
   * it gives way to backups in flight. Returns what it did.
   */
  collectGarbage(owner: string): ReturnType<GarbageCollector['collect']> {
    return this.#collector.collect(owner, () => this.#referencedPacks(owner));
  }

  async #referencedPacks(owner: string): Promise<Set<string>> {
    const packs = new Set<string>();
    for await (const object of this.#storage.list({ prefix: `${owner}/workspaces/` })) {
      const latest = object.key.endsWith('/backups/latest.json');
      if (!object.key.endsWith(manifestSuffix) && !latest) continue;
      const manifest = await this.#getManifest(object.key, latest ? {} : { base: baseOf(object.key) });
      for (const id of manifest.packs ?? []) packs.add(id);
    }
    return packs;
  }

  async #write(target: ArchiveTarget, dir: string, kind: ArchiveKind, key: string, exclude: string[], progress: ProgressReporter): Promise<BackupManifest> {
    progress({ phase: 'archiving', bytes: 0, files: 0 });
    const archive = createArchive(dir, { level: this.#options.compressionLevel, exclude });
    // Bytes of the compressed archive handed to storage: what the upload has taken so far.
    const digest = DigestStream.of(archive.stream, (bytes) => progress({ bytes, files: archive.filesSoFar() }));
    let stored = false;
    let manifestStored = false;
    let manifest: BackupManifest;
    try {
      await this.#storage.put({ key, body: digest });
      stored = true;
      const stats = await archive.done;
      progress({ phase: 'committing', bytes: digest.size, files: stats.files });
      if (stats.warnings.length > 0) this.#log.warn('files changed while archiving', { key, warnings: stats.warnings.slice(0, 5) });
      manifest = this.#sign({
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
      });
      await this.#putJson(manifestKeyFor(key), manifest);
      manifestStored = true;
      if (kind === 'backup') await this.#commitLatest(target, manifest);
    } catch (error) {
      // The meter first: it would otherwise fail with the archive stream's premature close, and nobody reads it now.
      digest.destroy();
      archive.stream.destroy();
      await archive.done.catch(() => {});
      // A failed pointer update may still have happened (a lost response): never delete what latest.json may name.
      const removable = !manifestStored || (await this.#latestNamesOther(target, key));
      if (removable) {
        // Manifest first: no manifest may ever name a missing archive.
        if (manifestStored) await this.#storage.delete({ key: manifestKeyFor(key) }).catch(() => {});
        if (stored) await this.#storage.delete({ key }).catch(() => {});
      } else {
        this.#log.warn('kept a backup whose latest.json update failed: it may be current', { key, owner: target.owner, metaId: target.metaId });
      }
      throw toWsdError(error, 'UNAVAILABLE', `storing ${kind} ${key}`);
    }
    if (kind === 'backup') {
      // The new backup is committed; pruning failures only cost storage, so they are logged, not thrown.
      await this.#prune(target, key).catch((error: unknown) => this.#log.warn('pruning old backups failed', { owner: target.owner, metaId: target.metaId, error: error as Error }));
    }
    return manifest;
  }

  /**
   * Deletes backups beyond `keep` (manifest first, so no manifest ever names a missing archive) and old orphans.
   * Only backups older than the one `latest.json` names are deleted: the pointer only moves to newer backups, so
   * those can never become current again, while a newer one may be about to (another node's backup in flight).
   */
  async #prune(target: Pick<ArchiveTarget, 'owner' | 'metaId'>, current: string): Promise<void> {
    const prefix = `${workspacePrefix(target)}backups/`;
    const manifests: string[] = [];
    const archives: Array<{ key: string; modifiedAt: Date }> = [];
    for await (const object of this.#storage.list({ prefix })) {
      if (object.key.endsWith(manifestSuffix)) manifests.push(object.key);
      else if (objectSuffixes.some((suffix) => object.key.endsWith(suffix))) archives.push(object);
    }
    // Keys start with a sortable UTC time, so key order is age order.
    manifests.sort();
    const pointer = (await this.#readLatest(target)).manifest?.object;
    const expired = manifests
      .slice(0, Math.max(0, manifests.length - this.#options.keep))
      .filter((m) => m !== manifestKeyFor(current) && pointer !== undefined && baseOf(m) < baseOf(pointer));
    for (const manifest of expired) {
      await this.#storage.delete({ key: manifest });
      for (const suffix of objectSuffixes) await this.#storage.delete({ key: baseOf(manifest) + suffix });
    }
    const committed = new Set(manifests.map(baseOf));
    for (const archive of archives) {
      if (!committed.has(baseOf(archive.key)) && archive.key !== current && Date.now() - archive.modifiedAt.getTime() > orphanAgeMs) {
        this.#log.info('deleting an archive whose upload never completed', { key: archive.key });
        await this.#storage.delete({ key: archive.key });
      }
    }
    const last = this.#collected.get(target.owner);
    if (expired.length > 0 && this.#format === 'chunks' && (last === undefined || Date.now() - last >= this.#gcIntervalMs)) {
      this.#collected.set(target.owner, Date.now());
      const outcome = await this.collectGarbage(target.owner);
      this.#log.debug('garbage collection after pruning', { owner: target.owner, ...outcome });
    }
  }

  /**
   * Points `backups/latest.json` at `manifest` unless it already names a newer backup: read it with its etag,
   * compare, put with `ifMatch` (`ifNoneMatch` when absent), and on a conflict read again, a few times. Returns
   * whether `manifest` is current afterwards. A pointer that fails validation (planted, or signed with another key)
   * is replaced, logged.
   */
  async #commitLatest(target: Pick<ArchiveTarget, 'owner' | 'metaId'>, manifest: BackupManifest): Promise<boolean> {
    const fields = { owner: target.owner, metaId: target.metaId, key: manifest.object };
    for (let attempt = 1; ; attempt++) {
      const seen = await this.#readLatest(target);
      if (seen.manifest && seen.manifest.object >= manifest.object) {
        if (seen.manifest.object === manifest.object) return true; // an earlier attempt whose response was lost
        this.#log.info('a newer backup is current already; this one stays as an older backup', { ...fields, current: seen.manifest.object });
        return false;
      }
      if (seen.invalid) this.#log.warn('replacing a latest.json that does not validate', { ...fields, reason: seen.invalid.message });
      try {
        await this.#putJson(latestKey(target), manifest, this.#condition(seen.etag));
        return true;
      } catch (error) {
        const conflict = isWsdError(error, 'FAILED_PRECONDITION') || isWsdError(error, 'ALREADY_EXISTS');
        if (!conflict) {
          // A conditional put that failed in transit may have happened: only latest.json itself can tell.
          const now = await this.#readLatest(target).catch(() => undefined);
          if (now?.manifest?.object === manifest.object) return true;
          throw error;
        }
        if (attempt >= latestAttempts) throw new WsdError('UNAVAILABLE', `latest.json kept changing during ${latestAttempts} attempts to update it`, { cause: error });
        this.#log.debug('latest.json changed meanwhile; reading it again', { ...fields, attempt });
        // Another writer just committed; a short random pause keeps two losers from colliding again.
        await sleep(Math.random() * 20 * attempt);
      }
    }
  }

  /** The put condition for replacing the latest.json version `etag` (absent: undefined), as far as storage can. */
  #condition(etag: string | undefined): Pick<PutOptions, 'ifMatch' | 'ifNoneMatch'> {
    const { conditionalCreate, conditionalReplace } = this.#storage.capabilities;
    if (etag === undefined ? conditionalCreate : conditionalReplace) return etag === undefined ? { ifNoneMatch: true } : { ifMatch: etag };
    if (!this.#warnedNoCas) {
      this.#warnedNoCas = true;
      this.#log.warn('storage cannot put conditionally: latest.json is replaced without compare-and-swap, so concurrent backups of one workspace may leave an older one current');
    }
    return {};
  }

  #warnedNoCas = false;

  /** latest.json with its etag; `invalid` when it exists but does not validate; `{}` when there is none. */
  async #readLatest(target: Pick<ArchiveTarget, 'owner' | 'metaId'>): Promise<{ manifest?: BackupManifest; etag?: string; invalid?: WsdError }> {
    const version: { etag?: string } = {};
    try {
      const manifest = await this.#getManifest(latestKey(target), { kind: 'backup', prefix: `${workspacePrefix(target)}backups/` }, version);
      return { manifest, ...(version.etag !== undefined ? { etag: version.etag } : {}) };
    } catch (error) {
      if (isWsdError(error, 'NOT_FOUND')) return {};
      if (isWsdError(error, 'DATA_LOSS') && version.etag !== undefined) return { etag: version.etag, invalid: error };
      throw error;
    }
  }

  /** Whether latest.json is known not to name `archiveKey` (absent, invalid, or naming another); false when unreadable. */
  async #latestNamesOther(target: Pick<ArchiveTarget, 'owner' | 'metaId'>, archiveKey: string): Promise<boolean> {
    return this.#readLatest(target).then(
      (seen) => seen.manifest?.object !== archiveKey,
      () => false,
    );
  }

  /**
   * Finishes the commit of a backup whose manifest was stored before a crash: makes it current (the same
   * compare-and-swap as a fresh backup: never over a newer one) and prunes. Returns false when no manifest is stored
   * under `key` (the backup must be taken again).
   */
  async resumeCommit(target: Pick<ArchiveTarget, 'owner' | 'metaId'>, key: string): Promise<boolean> {
    let manifest: BackupManifest;
    try {
      manifest = await this.#getManifest(manifestKeyFor(key), { kind: 'backup', base: baseOf(key) });
    } catch (error) {
      if (isWsdError(error, 'NOT_FOUND')) return false;
      throw error;
    }
    await this.#commitLatest(target, manifest);
    await this.#prune(target, key).catch((error: unknown) => this.#log.warn('pruning old backups failed', { owner: target.owner, metaId: target.metaId, error: error as Error }));
    return true;
  }

  /** The current backup of a workspace, or undefined when it has none. */
  async latestBackup(target: Pick<ArchiveTarget, 'owner' | 'metaId'>): Promise<BackupManifest | undefined> {
    try {
      return await this.#getManifest(latestKey(target), { kind: 'backup', prefix: `${workspacePrefix(target)}backups/` });
    } catch (error) {
      if (isWsdError(error, 'NOT_FOUND')) return undefined;
      throw error;
    }
  }

  /** The manifest of a snapshot by the name TakeSnapshot returned; NOT_FOUND when there is no such snapshot. */
  async snapshot(name: string): Promise<BackupManifest> {
    parseSnapshotName(name);
    try {
      return await this.#getManifest(manifestKeyFor(name), { kind: 'snapshot', object: name });
    } catch (error) {
      if (isWsdError(error, 'NOT_FOUND')) throw new WsdError('NOT_FOUND', `snapshot ${name} does not exist`);
      throw error;
    }
  }

  /**
   * A backup of a workspace by the key BackupWorkspace and ListBackups return
   * (`<owner>/workspaces/<metaId>/backups/<name>.tar.zst`): INVALID_ARGUMENT (field `field`) for a key of another
   * shape or another workspace, NOT_FOUND when no committed backup has that key.
   */
  async backup(target: Pick<ArchiveTarget, 'owner' | 'metaId'>, key: string, field = 'backup'): Promise<BackupManifest> {
    const prefix = `${workspacePrefix(target)}backups/`;
    if (typeof key !== 'string' || !key.startsWith(prefix) || !/^[A-Za-z0-9][A-Za-z0-9._-]*\.(?:tar|tree)\.zst$/.test(key.slice(prefix.length))) {
      throw new WsdError('INVALID_ARGUMENT', `backup key ${JSON.stringify(key)} is not one of the backups of workspace ${target.metaId} (owner ${target.owner}): give a key as BackupWorkspace or ListBackups return it, ${prefix}<name>.tree.zst or .tar.zst`, { field });
    }
    try {
      return await this.#getManifest(manifestKeyFor(key), { kind: 'backup', object: key, prefix });
    } catch (error) {
      if (isWsdError(error, 'NOT_FOUND')) throw new WsdError('NOT_FOUND', `backup ${key} does not exist`);
      throw error;
    }
  }

  /**
   * The archive a manifest names as a plain `.tar.zst` that `tar --zstd -xf` extracts, for people who need one.
   * For the `tar+zstd` format that is the stored archive itself, streamed from storage and verified on the way: more
   * bytes than the manifest records, or a size or sha256 that differs at the end, fail the stream with `DATA_LOSS`
   * before it ends — a reader never sees a clean end of a corrupt export. Storage failures fail it as the storage
   * backend reports them (`UNAVAILABLE`, `NOT_FOUND` for an archive gone since its manifest was read). `signal`
   * aborts the read; destroying the stream closes the storage stream.
   */
  async exportArchive(manifest: BackupManifest, signal?: AbortSignal): Promise<Readable> {
    signal?.throwIfAborted();
    if (manifest.format === treeFormat) {
      // A chunked backup becomes the tar stream GNU tar would have written of the same tree, through zstd.
      const { tree } = await this.#readTree(manifest, signal);
      const owner = ownerOfObject(manifest.object);
      const storage = this.#storage;
      const members = (async function* (): AsyncGenerator<TarMember> {
        for (const e of tree.entries) {
          yield {
            path: e.path,
            type: e.type,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            mtimeNs: BigInt(e.mtimeNs),
            ...(e.size !== undefined ? { size: e.size } : {}),
            ...(e.target !== undefined ? { linkTarget: e.target } : {}),
            ...(e.rdev ? { devMajor: e.rdev[0], devMinor: e.rdev[1] } : {}),
            ...(e.chunks
              ? {
                  data: async function* () {
                    for (const index of e.chunks!) yield await readChunk(storage, owner, tree, index, signal);
                  },
                }
              : {}),
          };
        }
      })();
      return exportTarZst(members, { ...(signal ? { signal } : {}) });
    }
    if (manifest.format !== archiveFormat) {
      throw new WsdError('FAILED_PRECONDITION', `archive ${manifest.object} has format ${JSON.stringify(manifest.format)}; this wsd exports ${archiveFormat}`);
    }
    const { body } = await this.#storage.get({ key: manifest.object, ...(signal ? { signal } : {}) });
    const verified = new VerifiedStream(manifest, `archive ${manifest.object}`);
    body.once('error', (error: unknown) => verified.destroy(toWsdError(error, 'UNAVAILABLE', `reading archive ${manifest.object}`)));
    verified.once('close', () => body.destroy());
    body.pipe(verified);
    return verified;
  }

  /** Every committed backup and snapshot of a workspace, oldest first. */
  async list(target: Pick<ArchiveTarget, 'owner' | 'metaId'>): Promise<{ backups: BackupManifest[]; snapshots: BackupManifest[] }> {
    const out = { backups: [] as BackupManifest[], snapshots: [] as BackupManifest[] };
    for await (const object of this.#storage.list({ prefix: workspacePrefix(target) })) {
      if (!object.key.endsWith(manifestSuffix)) continue;
      const manifest = await this.#getManifest(object.key, { base: baseOf(object.key) }).catch(() => undefined);
      if (manifest) (manifest.kind === 'backup' ? out.backups : out.snapshots).push(manifest);
    }
    return out;
  }

  /**
   * Extracts the archive a manifest names into `dir` so that nothing unverified becomes visible: the archive goes to
   * a fresh staging folder inside `dir` (nothing planted there to write through), bounded by the stream size the
   * manifest recorded (a decompression bomb stops early, `DATA_LOSS`) and by `limits.quotaBytes` (`RESOURCE_EXHAUSTED`);
   * size and sha256 of the bytes read are checked (`DATA_LOSS`); only then is the content moved into `dir`, merged
   * with what is there (a composite's earlier children), never following a symlink in `dir`. On failure the staging
   * folder is removed and `dir` is as it was.
   */
  async restore(manifest: BackupManifest, dir: string, signal?: AbortSignal, limits: RestoreLimits = {}): Promise<{ members: number }> {
    signal?.throwIfAborted();
    if (manifest.format === treeFormat) return this.#restoreTree(manifest, dir, signal, limits);
    if (manifest.format !== archiveFormat) {
      throw new WsdError('FAILED_PRECONDITION', `archive ${manifest.object} has format ${JSON.stringify(manifest.format)}; this wsd reads ${archiveFormat}`);
    }
    return staged(dir, async (_pinned, fd) => {
      const { body } = await this.#storage.get({ key: manifest.object, ...(signal ? { signal } : {}) });
      // Bytes of the stored archive read so far, out of its recorded size.
      limits.progress?.({ phase: 'restoring', bytes: 0, totalBytes: manifest.size, files: 0 });
      const digest = DigestStream.of(body, limits.progress ? (bytes) => limits.progress!({ bytes }) : undefined);
      let result: { members: number };
      try {
        result = await extractArchive(digest, dir, {
          ...this.#options.extract,
          dirFd: fd,
          maxStreamBytes: manifest.bytesUncompressed,
          ...(limits.quotaBytes ? { maxDataBytes: limits.quotaBytes, dataLimitReason: `the workspace quota of ${limits.quotaBytes} bytes` } : {}),
        });
      } finally {
        // A refused or failed restore must not leave the storage stream (file, socket) open; the meter goes first,
        // or the storage stream's premature close would fail it with an error nobody listens to.
        digest.destroy();
        body.destroy();
      }
      if (digest.size !== manifest.size || digest.sha256 !== manifest.sha256) {
        throw new WsdError('DATA_LOSS', `archive ${manifest.object} is corrupt: expected ${manifest.size} bytes sha256 ${manifest.sha256}, read ${digest.size} bytes sha256 ${digest.sha256}`);
      }
      limits.progress?.({ files: result.members });
      return result;
    });
  }

  /** The tree a version 2 manifest names: its bytes checked against the manifest, decoded within bounds, validated. */
  async #readTree(manifest: BackupManifest, signal: AbortSignal | undefined): Promise<ReturnType<typeof decodeTree>> {
    const body = await readBounded(this.#storage, manifest.object, manifest.size, signal);
    const sha = createHash('sha256').update(body).digest('hex');
    if (body.length !== manifest.size || sha !== manifest.sha256) {
      throw new WsdError('DATA_LOSS', `tree ${manifest.object} is corrupt: expected ${manifest.size} bytes sha256 ${manifest.sha256}, read ${body.length} bytes sha256 ${sha}`);
    }
    const json = await decompressFrame(body, { exact: manifest.treeBytes! }, `tree ${manifest.object}`);
    return decodeTree(json.toString('utf8'), `tree ${manifest.object}`);
  }

  /** A chunked backup into `dir`, with the same guarantees as an archive: staged, verified, then moved in. */
  async #restoreTree(manifest: BackupManifest, dir: string, signal: AbortSignal | undefined, limits: RestoreLimits): Promise<{ members: number }> {
    const { tree, storedDataBytes } = await this.#readTree(manifest, signal);
    if (limits.quotaBytes && storedDataBytes > limits.quotaBytes) {
      throw new WsdError('RESOURCE_EXHAUSTED', `backup ${manifest.object} holds ${storedDataBytes} bytes of data, more than the workspace quota of ${limits.quotaBytes} bytes`);
    }
    const result = await staged(dir, async (pinned) => {
      // Packs are read from the repository of the owner whose folder holds the tree (checked against the request),
      // never from the owner a manifest names: an unsigned manifest could name anyone.
      const restored = await restoreTree({ tree, dir: pinned, storage: this.#storage, owner: ownerOfObject(manifest.object), extract: this.#options.extract, signal, progress: limits.progress });
      limits.progress?.({ files: restored.members });
      return restored;
    });
    if (limits.cacheAs && this.#trees) {
      const cacheAs = limits.cacheAs;
      await rememberRestoredTree(dir, tree)
        .then((now) => this.#trees!.write(cacheAs.owner, cacheAs.metaId, { object: manifest.object, ...now }))
        .catch((error: unknown) => this.#log.warn('cannot remember the restored tree; the first backup reads every file', { error: error as Error }));
    }
    return result;
  }

  async #putJson(key: string, value: unknown, condition: Pick<PutOptions, 'ifMatch' | 'ifNoneMatch'> = {}): Promise<void> {
    await this.#storage.put({ key, body: Buffer.from(`${JSON.stringify(value, null, 2)}\n`), contentType: 'application/json', ...condition });
  }

  /**
   * Reads a manifest and checks it before anything trusts it: size-bounded JSON, the shape and types of every field
   * a restore relies on, an archive key where the manifest says it belongs (a planted `latest.json` must not point
   * at another owner's archive), and, with a key configured, its HMAC. Anything else is DATA_LOSS.
   * `version.etag` receives the etag of the object read (also when it is refused), for a compare-and-swap.
   */
  async #getManifest(key: string, expect: { kind?: ArchiveKind; prefix?: string; object?: string; base?: string }, version?: { etag?: string }): Promise<BackupManifest> {
    const { body, etag } = await this.#storage.get({ key });
    if (version) version.etag = etag;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body as Readable) {
      size += (chunk as Buffer).length;
      if (size > maxManifestBytes) {
        (body as Readable).destroy();
        throw new WsdError('DATA_LOSS', `manifest ${key} is larger than ${maxManifestBytes} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    let manifest: BackupManifest;
    try {
      manifest = JSON.parse(Buffer.concat(chunks).toString('utf8')) as BackupManifest;
    } catch (error) {
      throw new WsdError('DATA_LOSS', `manifest ${key} is not valid JSON`, { cause: error });
    }
    const bad = (why: string) => new WsdError('DATA_LOSS', `manifest ${key} is refused: ${why}`);
    if (manifest === null || typeof manifest !== 'object' || (manifest.version !== 1 && manifest.version !== 2)) throw bad('not a wsd manifest (version 1 or 2)');
    if (manifest.kind !== 'backup' && manifest.kind !== 'snapshot') throw bad('unknown kind');
    if (expect.kind && manifest.kind !== expect.kind) throw bad(`it describes a ${manifest.kind}, not a ${expect.kind}`);
    const suffix = manifest.version === 1 ? archiveSuffix : treeSuffix;
    if (typeof manifest.object !== 'string' || !manifest.object.endsWith(suffix)) throw bad(manifest.version === 1 ? 'no archive key' : 'no tree key');
    if (manifest.version === 2) {
      if (manifest.format !== treeFormat) throw bad(`version 2 with format ${JSON.stringify(manifest.format)}`);
      if (!Number.isSafeInteger(manifest.treeBytes) || manifest.treeBytes! <= 0 || manifest.treeBytes! > maxTreeJsonBytes) throw bad(`treeBytes is not an integer in 1..${maxTreeJsonBytes}`);
      if (manifest.size > zstdBound(maxTreeJsonBytes)) throw bad('the tree object is larger than a tree can be');
      if (!Array.isArray(manifest.packs) || !manifest.packs.every((id) => typeof id === 'string' && isHexId(id))) throw bad('packs is not a list of pack ids');
    }
    if (expect.object !== undefined && manifest.object !== expect.object) throw bad('it names an archive other than the one beside it');
    if (expect.base !== undefined && baseOf(manifest.object) !== expect.base) throw bad('it names an archive other than the one beside it');
    if (expect.prefix !== undefined && (!manifest.object.startsWith(expect.prefix) || manifest.object.slice(expect.prefix.length).includes('/'))) {
      throw bad("its archive is not one of this workspace's backups");
    }
    for (const field of ['size', 'files', 'bytesUncompressed'] as const) {
      if (!Number.isSafeInteger(manifest[field]) || manifest[field] < 0) throw bad(`${field} is not a non-negative integer`);
    }
    // Restores are bounded by it; a tar stream is never empty (GNU tar writes at least one 10 KiB record).
    if (manifest.version === 1 && manifest.bytesUncompressed === 0) throw bad('bytesUncompressed is 0');
    if (typeof manifest.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(manifest.sha256)) throw bad('sha256 is not 64 hex digits');
    if (this.#hmacKey) {
      if (manifest.hmac === undefined) {
        if (!this.#acceptUnsigned) throw bad('it is not authenticated (no hmac) and backup.acceptUnsignedManifests is off');
        this.#log.warn('accepting a manifest without hmac (backup.acceptUnsignedManifests)', { key });
      } else if (typeof manifest.hmac !== 'string' || !hmacEqual(manifest.hmac, this.#hmac(manifest))) {
        throw bad('its hmac does not match (written without this node\'s backup.hmacKey, or altered)');
      }
    }
    return manifest;
  }

  #sign(manifest: BackupManifest): BackupManifest {
    return this.#hmacKey ? { ...manifest, hmac: this.#hmac(manifest) } : manifest;
  }

  #hmac(manifest: BackupManifest): string {
    const { hmac: _ignored, ...rest } = manifest;
    return createHmac('sha256', this.#hmacKey!).update(canonicalJson(rest)).digest('hex');
  }
}

/**
 * Every pack `tree` names is stored and long enough, and the tree is one a restore accepts: never commit a backup
 * that cannot restore (a tree over the reader's bounds, a pack that went missing).
 */
function assertPacksStored(tree: Tree, stored: ReadonlyMap<string, number>): void {
  const needed = new Map<number, number>();
  for (const c of tree.chunks) if (c.encoding !== 'zero') needed.set(c.pack, Math.max(needed.get(c.pack) ?? 0, c.offset + c.stored));
  for (const [pack, end] of needed) {
    const size = stored.get(tree.packs[pack]!);
    if (size === undefined || size < end) throw new WsdError('UNAVAILABLE', `pack ${tree.packs[pack]} that this backup uses is ${size === undefined ? 'missing' : 'shorter than indexed'}`);
  }
}

export interface RestoreLimits {
  quotaBytes?: number;
  progress?: ProgressReporter;
  /** The restore fills this workspace's whole folder: remember the tree as its last backup's (chunked backups). */
  cacheAs?: Pick<ArchiveTarget, 'owner' | 'metaId'>;
}

/**
 * The tree as it now stands in `dir`, for the node's cache: Node sets times through a double (to a few microseconds), so
 * entries take the mtimes they got (when within 4 µs of the tree's), and files still of the tree's size keep their
 * inode and ctime. Its next backup then builds exactly this tree from stats alone and finds it unchanged.
 */
async function rememberRestoredTree(dir: string, tree: Tree): Promise<{ tree: Tree; stats: Map<string, [string, string]>; sha256: string }> {
  const byPath = new Map(tree.entries.map((e) => [e.path, { ...e }]));
  const stats = new Map<string, [string, string]>();
  for (const { path: rel, stat: st } of await scanTree(dir)) {
    const entry = byPath.get(rel);
    if (!entry) continue;
    const drift = BigInt(st.mtimeNs) - BigInt(entry.mtimeNs);
    if (drift > -4000n && drift < 4000n) entry.mtimeNs = st.mtimeNs;
    if (entry.type === 'file' && st.kind === 'file' && st.size === entry.size) stats.set(rel, [st.ino, st.ctimeNs]);
  }
  const remembered: Tree = { ...tree, entries: tree.entries.map((e) => byPath.get(e.path)!) };
  return { tree: remembered, stats, sha256: createHash('sha256').update(encodeTree(remembered)).digest('hex') };
}

export function workspacePrefix(target: Pick<ArchiveTarget, 'owner' | 'metaId'>): string {
  return `${target.owner}/workspaces/${target.metaId}/`;
}

const latestKey = (target: Pick<ArchiveTarget, 'owner' | 'metaId'>) => `${workspacePrefix(target)}backups/latest.json`;
/** The owner whose folder holds a (checked) object key: its packs are read from that owner's repository. */
const ownerOfObject = (key: string) => key.slice(0, key.indexOf('/'));

/** A backup's key without its suffix: `<prefix><time>-<nonce>`, shared by its object and its manifest. */
function baseOf(key: string): string {
  for (const suffix of [...objectSuffixes, manifestSuffix]) if (key.endsWith(suffix)) return key.slice(0, -suffix.length);
  return key;
}
const manifestKeyFor = (objectKey: string) => baseOf(objectKey) + manifestSuffix;

/** JSON with object keys sorted at every depth: the bytes an HMAC covers must not depend on key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

function hmacEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Restores extract into `<dir>/.wsd-restore-<nonce>`: ids and archive members cannot start with it by accident. */
const stagingPrefix = '.wsd-restore-';

/**
 * Runs `fill` on a fresh staging folder inside `dir` (nothing planted there to write through), then moves its content
 * into `dir`; the staging folder goes either way, and `dir` gets the staged root's mode, owner and times last (making
 * and removing the staging folder changes its mtime).
 *
 * `fill` gets the folder only as `pinned`, a path through `/proc/self/fd` that resolves from the folder wsd made
 * whatever its name points at later, and as that descriptor (for a child process: tar gets it as its fd 3). Whoever can write `dir` (the workspace user) can rename the staging
 * folder and put a symlink in its place; code running as root writes and moves only through `pinned`. The folder is
 * checked to be ours (owner, mode 0700) once opened: a folder renamed into its place between mkdir and open is not.
 */
async function staged<T extends { members: number; root?: RootMetadata }>(dir: string, fill: (pinned: string, fd: number) => Promise<T>): Promise<T> {
  const staging = path.join(dir, `${stagingPrefix}${randomBytes(6).toString('hex')}`);
  await mkdir(staging, { mode: 0o700 });
  let handle: FileHandle | undefined;
  let root: Awaited<ReturnType<typeof moveInto>> | undefined;
  let result: T;
  try {
    handle = await open(staging, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    const info = await handle.stat();
    if (info.uid !== (process.getuid?.() ?? info.uid) || (info.mode & 0o7777) !== 0o700) {
      throw new WsdError('FAILED_PRECONDITION', `restoring into ${dir}: the staging folder was replaced while it was made`);
    }
    const pinned = `/proc/self/fd/${handle.fd}`;
    result = await fill(pinned, handle.fd);
    root = await moveInto(pinned, dir);
  } finally {
    await handle?.close();
    await rm(staging, { recursive: true, force: true, maxRetries: 3 });
  }
  if (result.root) {
    // The filler kept the staging folder wsd's own and says what the restored root is.
    await chmod(dir, result.root.mode);
    if (result.root.uid !== undefined) await chown(dir, result.root.uid, result.root.gid!);
    await utimes(dir, result.root.mtime, result.root.mtime);
  } else {
    await utimes(dir, root.atimeMs / 1000, root.mtimeMs / 1000);
  }
  return result;
}

/**
 * Moves everything in `from` into `to`: entries `to` lacks are renamed in; a folder meeting a real folder is merged
 * into it; anything else in `to` (a file, a symlink — never followed) is replaced, as tar would replace it. The root
 * takes the archived root's mode, owner and times. `from` is on the same filesystem (inside `to`).
 */
async function moveInto(from: string | Buffer, to: string | Buffer): Promise<import('node:fs').Stats> {
  // Before anything moves out: moving an entry out of `from` changes its mtime.
  const root = await stat(from);
  // Names as bytes: a name that is not UTF-8 (tar restores them) must not be read back as replacement characters.
  for (const name of await readdir(from, { encoding: 'buffer' })) {
    const source = childPath(from, name);
    const target = childPath(to, name);
    const [sourceInfo, targetInfo] = await Promise.all([lstat(source), lstat(target).catch(() => undefined)]);
    if (sourceInfo.isDirectory() && targetInfo?.isDirectory()) {
      await mergeFolder(source, target);
      continue;
    }
    if (targetInfo) await rm(target, { recursive: true, force: true });
    await rename(source, target);
  }
  await chmod(to, root.mode & 0o7777);
  if (process.getuid?.() === 0) await chown(to, root.uid, root.gid);
  // Seconds as numbers, not Dates: a Date would cut the time to milliseconds.
  await utimes(to, root.atimeMs / 1000, root.mtimeMs / 1000);
  return root;
}

function childPath(dir: string | Buffer, name: Buffer): Buffer {
  return Buffer.concat([Buffer.isBuffer(dir) ? dir : Buffer.from(dir), Buffer.from('/'), name]);
}

async function mergeFolder(source: Buffer, target: Buffer): Promise<void> {
  await moveInto(source, target);
  await rmdir(source);
}

/** The owner and workspace of a snapshot name as TakeSnapshot returns it; INVALID_ARGUMENT for anything else. */
export function parseSnapshotName(name: string, field = 'snapshot'): { owner: string; metaId: string } {
  const match = /^([^/]+)\/workspaces\/([^/]+)\/snapshots\/[^/]+\.(?:tar|tree)\.zst$/.exec(name);
  if (!match) throw new WsdError('INVALID_ARGUMENT', `snapshot name ${JSON.stringify(name)} is not one that TakeSnapshot returns`, { field });
  return { owner: match[1]!, metaId: match[2]! };
}
