import type { Logger } from '../../observability/logger.js';
import type { StorageBackend } from '../../storage/storage-backend.js';
import { ChunkIndexStore, type IndexedPack } from './chunk-index.js';
import { RepositoryLocks } from './repository-locks.js';
import { packIdOf, packKey, packsPrefix } from './repository-layout.js';

export interface CollectOutcome {
  outcome: 'done' | 'busy' | 'unsupported' | 'refused';
  deletedPacks: number;
  deletedBytes: number;
}

/**
 * Deletes an owner's packs that no committed backup or snapshot references. Safe against backups in flight through
 * the exclusive lock (repository-locks.ts); safe against its own crash by order: index entries of a pack go before
 * the pack (a backup never finds a chunk whose pack is gone), and a pack younger than `graceMs` is never deleted
 * (belt and braces for a backup whose lock was lost). Any manifest it cannot read stops it: it cannot know what that
 * backup references.
 */
export class GarbageCollector {
  readonly #storage: StorageBackend;
  readonly #log: Logger;
  readonly #indexes: ChunkIndexStore;
  readonly #graceMs: number;

  constructor(storage: StorageBackend, log: Logger, indexes: ChunkIndexStore, options: { graceMs?: number } = {}) {
    this.#storage = storage;
    this.#log = log;
    this.#indexes = indexes;
    this.#graceMs = options.graceMs ?? 60 * 60 * 1000;
  }

  /**
   * `referencedPacks` lists, for every committed manifest of the owner, the packs it references (it throws when a
   * manifest cannot be read).
   */
  async collect(owner: string, referencedPacks: () => Promise<Set<string>>): Promise<CollectOutcome> {
    const none = (outcome: CollectOutcome['outcome']): CollectOutcome => ({ outcome, deletedPacks: 0, deletedBytes: 0 });
    if (!this.#storage.capabilities.conditionalCreate) return none('unsupported');
    const lock = await new RepositoryLocks(this.#storage, owner).exclusive();
    if (!lock) return none('busy');
    try {
      let referenced: Set<string>;
      try {
        referenced = await referencedPacks();
      } catch (error) {
        this.#log.warn('garbage collection skipped: a manifest cannot be read, so what it references is unknown', { owner, error: error as Error });
        return none('refused');
      }
      const doomed = new Map<string, number>();
      for await (const object of this.#storage.list({ prefix: packsPrefix(owner) })) {
        const id = packIdOf(object.key, owner);
        if (id && !referenced.has(id) && Date.now() - object.modifiedAt.getTime() > this.#graceMs) doomed.set(id, object.size);
      }
      if (doomed.size === 0) return none('done');
      // The index first: rewritten without the doomed packs as one object, then the old objects go.
      const index = await this.#indexes.load(owner);
      if (index.unreadable > 0) {
        // Its entries could not be rewritten without the doomed packs, and backups would keep finding them.
        this.#log.warn('garbage collection skipped: an index object cannot be read', { owner, unreadable: index.unreadable });
        return none('refused');
      }
      const kept: IndexedPack[] = [];
      const byPack = new Map<string, IndexedPack>();
      for (const [chunkId, location] of index.chunks) {
        if (doomed.has(location.pack)) continue;
        let pack = byPack.get(location.pack);
        if (!pack) {
          pack = { id: location.pack, size: index.packs.get(location.pack)!, chunks: [] };
          byPack.set(location.pack, pack);
          kept.push(pack);
        }
        pack.chunks.push({ id: chunkId, offset: location.offset, stored: location.stored, raw: location.raw, encoding: location.encoding });
      }
      if (kept.length > 0) await this.#indexes.write(owner, kept);
      for (const key of index.keys) await this.#storage.delete({ key });
      let deletedBytes = 0;
      for (const [id, size] of doomed) {
        await this.#storage.delete({ key: packKey(owner, id) });
        deletedBytes += size;
      }
      this.#log.info('garbage collection deleted unreferenced packs', { owner, packs: doomed.size, bytes: deletedBytes });
      return { outcome: 'done', deletedPacks: doomed.size, deletedBytes };
    } finally {
      await lock.release();
    }
  }
}
