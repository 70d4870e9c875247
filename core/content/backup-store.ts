import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm, rmdir, stat, chmod, chown, utimes } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { WsdError, isWsdError, toWsdError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { PutOptions, StorageBackend } from '../storage/storage-backend.js';
import type { ArchiveManifest, ArchiveService } from '../initializer/archive-service.js';
import type { ProgressReporter } from '../initializer/content-initializer.js';
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
  /** Ownership, special-file and setuid policy of restores. */
  extract?: ExtractOptions;
  /**
   * Key that authenticates manifests (HMAC-SHA256): every manifest written carries `hmac`, and a manifest read
   * without a valid one is refused — an object planted in storage by someone without the key restores nothing.
   */
  hmacKey?: Buffer;
  /** With `hmacKey`: still accept manifests without `hmac` (written before the key was set), with a warning. */
  acceptUnsignedManifests?: boolean;
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
/** Manifests are a few hundred bytes; anything far larger is not one. */
const maxManifestBytes = 64 * 1024;
const manifestSuffix = '.manifest.json';

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

  constructor(storage: StorageBackend, log: Logger, options: BackupStoreOptions = {}) {
    this.#storage = storage;
    this.#log = log;
    this.#options = { keep: options.keep ?? 3, compressionLevel: options.compressionLevel ?? 1, extract: options.extract ?? {} };
    this.#uploads = new Semaphore(options.maxConcurrent ?? 2);
    this.#hmacKey = options.hmacKey;
    this.#acceptUnsigned = options.acceptUnsignedManifests ?? false;
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
  write(target: ArchiveTarget, dir: string, kind: ArchiveKind, options: { key?: string; exclude?: string[]; progress?: ProgressReporter } = {}): Promise<BackupManifest> {
    const progress = options.progress ?? (() => {});
    progress({ phase: 'waiting for an upload slot' });
    return this.#uploads.run(() => this.#write(target, dir, kind, options.key ?? this.newArchiveKey(target, kind), options.exclude ?? [], progress));
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
      else if (object.key.endsWith(archiveSuffix)) archives.push(object);
    }
    // Keys start with a sortable UTC time, so key order is age order.
    manifests.sort();
    const pointer = (await this.#readLatest(target)).manifest?.object;
    const expired = manifests
      .slice(0, Math.max(0, manifests.length - this.#options.keep))
      .filter((m) => m !== manifestKeyFor(current) && pointer !== undefined && archiveKeyFor(m) < pointer);
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
      manifest = await this.#getManifest(manifestKeyFor(key), { kind: 'backup', object: key });
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

  /** Every committed backup and snapshot of a workspace, oldest first. */
  async list(target: Pick<ArchiveTarget, 'owner' | 'metaId'>): Promise<{ backups: BackupManifest[]; snapshots: BackupManifest[] }> {
    const out = { backups: [] as BackupManifest[], snapshots: [] as BackupManifest[] };
    for await (const object of this.#storage.list({ prefix: workspacePrefix(target) })) {
      if (!object.key.endsWith(manifestSuffix)) continue;
      const manifest = await this.#getManifest(object.key, { object: archiveKeyFor(object.key) }).catch(() => undefined);
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
  async restore(manifest: BackupManifest, dir: string, signal?: AbortSignal, limits: { quotaBytes?: number; progress?: ProgressReporter } = {}): Promise<{ members: number }> {
    signal?.throwIfAborted();
    if (manifest.format !== archiveFormat) {
      throw new WsdError('FAILED_PRECONDITION', `archive ${manifest.object} has format ${JSON.stringify(manifest.format)}; this wsd reads ${archiveFormat}`);
    }
    const staging = path.join(dir, `${stagingPrefix}${randomBytes(6).toString('hex')}`);
    await mkdir(staging, { mode: 0o700 });
    try {
      const { body } = await this.#storage.get({ key: manifest.object, ...(signal ? { signal } : {}) });
      // Bytes of the stored archive read so far, out of its recorded size.
      limits.progress?.({ phase: 'restoring', bytes: 0, totalBytes: manifest.size, files: 0 });
      const digest = DigestStream.of(body, limits.progress ? (bytes) => limits.progress!({ bytes }) : undefined);
      let result: { members: number };
      try {
        result = await extractArchive(digest, staging, {
          ...this.#options.extract,
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
      await moveInto(staging, dir);
      return result;
    } finally {
      await rm(staging, { recursive: true, force: true, maxRetries: 3 });
    }
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
  async #getManifest(key: string, expect: { kind?: ArchiveKind; prefix?: string; object?: string }, version?: { etag?: string }): Promise<BackupManifest> {
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
    if (manifest === null || typeof manifest !== 'object' || manifest.version !== 1) throw bad('not a wsd manifest (version 1)');
    if (manifest.kind !== 'backup' && manifest.kind !== 'snapshot') throw bad('unknown kind');
    if (expect.kind && manifest.kind !== expect.kind) throw bad(`it describes a ${manifest.kind}, not a ${expect.kind}`);
    if (typeof manifest.object !== 'string' || !manifest.object.endsWith(archiveSuffix)) throw bad('no archive key');
    if (expect.object !== undefined && manifest.object !== expect.object) throw bad('it names an archive other than the one beside it');
    if (expect.prefix !== undefined && (!manifest.object.startsWith(expect.prefix) || manifest.object.slice(expect.prefix.length).includes('/'))) {
      throw bad("its archive is not one of this workspace's backups");
    }
    for (const field of ['size', 'files', 'bytesUncompressed'] as const) {
      if (!Number.isSafeInteger(manifest[field]) || manifest[field] < 0) throw bad(`${field} is not a non-negative integer`);
    }
    // Restores are bounded by it; a tar stream is never empty (GNU tar writes at least one 10 KiB record).
    if (manifest.bytesUncompressed === 0) throw bad('bytesUncompressed is 0');
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

export function workspacePrefix(target: Pick<ArchiveTarget, 'owner' | 'metaId'>): string {
  return `${target.owner}/workspaces/${target.metaId}/`;
}

const latestKey = (target: Pick<ArchiveTarget, 'owner' | 'metaId'>) => `${workspacePrefix(target)}backups/latest.json`;
const manifestKeyFor = (archiveKey: string) => archiveKey.slice(0, -archiveSuffix.length) + manifestSuffix;
const archiveKeyFor = (manifestKey: string) => manifestKey.slice(0, -manifestSuffix.length) + archiveSuffix;

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
 * Moves everything in `from` into `to`: entries `to` lacks are renamed in; a folder meeting a real folder is merged
 * into it; anything else in `to` (a file, a symlink — never followed) is replaced, as tar would replace it. The root
 * takes the archived root's mode, owner and times. `from` is on the same filesystem (inside `to`).
 */
async function moveInto(from: string, to: string): Promise<void> {
  for (const name of await readdir(from)) {
    const source = path.join(from, name);
    const target = path.join(to, name);
    const [sourceInfo, targetInfo] = await Promise.all([lstat(source), lstat(target).catch(() => undefined)]);
    if (sourceInfo.isDirectory() && targetInfo?.isDirectory()) {
      await mergeFolder(source, target);
      continue;
    }
    if (targetInfo) await rm(target, { recursive: true, force: true });
    await rename(source, target);
  }
  const root = await stat(from);
  await chmod(to, root.mode & 0o7777);
  if (process.getuid?.() === 0) await chown(to, root.uid, root.gid);
  await utimes(to, root.atime, root.mtime);
}

async function mergeFolder(source: string, target: string): Promise<void> {
  await moveInto(source, target);
  await rmdir(source);
}

/** The owner and workspace of a snapshot name as TakeSnapshot returns it; INVALID_ARGUMENT for anything else. */
export function parseSnapshotName(name: string, field = 'snapshot'): { owner: string; metaId: string } {
  const match = /^([^/]+)\/workspaces\/([^/]+)\/snapshots\/[^/]+\.tar\.zst$/.exec(name);
  if (!match) throw new WsdError('INVALID_ARGUMENT', `snapshot name ${JSON.stringify(name)} is not one that TakeSnapshot returns`, { field });
  return { owner: match[1]!, metaId: match[2]! };
}
