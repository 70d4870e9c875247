import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { WsdError, isWsdError } from '../../errors.js';
import type { StorageBackend } from '../../storage/storage-backend.js';
import { exclusiveLockKey, locksPrefix, timeNonce } from './repository-layout.js';

/** A lock not refreshed for this long belongs to a crashed process (restic's rule; refreshed every 5 minutes). */
export const staleLockMs = 30 * 60 * 1000;
const refreshMs = 5 * 60 * 1000;

export interface HeldLock {
  readonly key: string;
  release(): Promise<void>;
}

/**
 * The two locks that make garbage collection safe against backups in flight (restic's design, ADR 0007): a backup
 * holds a shared lock from before it reads the owner's index until its manifest is stored (from then on the manifest
 * itself references every pack it uses); garbage collection takes the exclusive lock with a conditional create and
 * gives up if any fresh shared lock exists. A backup that finds the exclusive lock waits for it to go.
 *
 * Why this is enough: a backup writes its shared lock, then checks the exclusive one; a collector creates the
 * exclusive lock, then lists shared ones. Whichever comes second sees the other (storage is strongly consistent).
 */
export class RepositoryLocks {
  readonly #storage: StorageBackend;
  readonly #owner: string;
  readonly #body: Buffer;

  constructor(storage: StorageBackend, owner: string) {
    this.#storage = storage;
    this.#owner = owner;
    this.#body = Buffer.from(`${JSON.stringify({ host: hostname(), pid: process.pid })}\n`);
  }

  /** Takes a shared lock; waits (up to `maxWaitMs`) while a collection holds the exclusive one. */
  async shared(signal?: AbortSignal, maxWaitMs = 10 * 60 * 1000): Promise<HeldLock> {
    const key = `${locksPrefix(this.#owner)}shared-${timeNonce(randomBytes(4).toString('hex'))}.json`;
    await this.#put(key, signal);
    const lock = this.#held(key);
    try {
      const deadline = Date.now() + maxWaitMs;
      while (await this.#exclusiveHeld(signal)) {
        if (Date.now() > deadline) throw new WsdError('UNAVAILABLE', `the repository of ${this.#owner} stayed locked by garbage collection for ${Math.round(maxWaitMs / 1000)} s`);
        await sleep(1000, undefined, signal ? { signal } : {});
      }
    } catch (error) {
      await lock.release();
      throw error;
    }
    return lock;
  }

  /** The exclusive lock, or undefined when another collection holds it or a backup is in flight. */
  async exclusive(): Promise<HeldLock | undefined> {
    const key = exclusiveLockKey(this.#owner);
    try {
      await this.#storage.put({ key, body: this.#body, ifNoneMatch: true, contentType: 'application/json' });
    } catch (error) {
      if (!isWsdError(error, 'ALREADY_EXISTS')) throw error;
      // A collector that crashed leaves its lock: replace it once stale, by compare-and-swap (two may try).
      const info = await this.#storage.head({ key }).catch(() => undefined);
      if (!info || Date.now() - info.modifiedAt.getTime() < staleLockMs) return undefined;
      try {
        await this.#storage.put({ key, body: this.#body, ifMatch: info.etag, contentType: 'application/json' });
      } catch {
        return undefined;
      }
    }
    const lock = this.#held(key);
    try {
      for await (const object of this.#storage.list({ prefix: `${locksPrefix(this.#owner)}shared-` })) {
        if (Date.now() - object.modifiedAt.getTime() < staleLockMs) {
          await lock.release();
          return undefined;
        }
        await this.#storage.delete({ key: object.key }); // a crashed backup's lock
      }
    } catch (error) {
      await lock.release();
      throw error;
    }
    return lock;
  }

  async #exclusiveHeld(signal?: AbortSignal): Promise<boolean> {
    try {
      const info = await this.#storage.head({ key: exclusiveLockKey(this.#owner), ...(signal ? { signal } : {}) });
      return Date.now() - info.modifiedAt.getTime() < staleLockMs;
    } catch (error) {
      if (isWsdError(error, 'NOT_FOUND')) return false;
      throw error;
    }
  }

  #put(key: string, signal?: AbortSignal): Promise<unknown> {
    return this.#storage.put({ key, body: this.#body, contentType: 'application/json', ...(signal ? { signal } : {}) });
  }

  #held(key: string): HeldLock {
    // Long backups refresh their lock so a collector never takes it for a crashed one.
    const timer = setInterval(() => void this.#put(key).catch(() => {}), refreshMs);
    timer.unref();
    let released = false;
    return {
      key,
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(timer);
        await this.#storage.delete({ key }).catch(() => {}); // a lock left behind goes stale in 30 minutes
      },
    };
  }
}
