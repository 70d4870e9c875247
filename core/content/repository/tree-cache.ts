import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeTree, encodeTree, maxTreeJsonBytes } from './tree.js';
import type { PreviousTree } from './tree-builder.js';
import { compressFrame, decompressFrame } from './zstd-frames.js';

export interface CachedTree extends PreviousTree {
  /** Storage key of the tree object this describes, and its sha256. */
  object: string;
  sha256: string;
}

/**
 * The node's memory of each workspace's last backup (its tree plus inode and ctime of every file when it was read),
 * in `<cacheDir>/trees/`: what lets a backup skip reading unchanged files. Only a cache: a missing or unreadable
 * entry costs one full read of the workspace (chunks already stored are still not uploaded again).
 */
export class TreeCache {
  readonly #dir: string;

  constructor(cacheDir: string) {
    this.#dir = path.join(cacheDir, 'trees');
  }

  async read(owner: string, metaId: string): Promise<CachedTree | undefined> {
    try {
      const body = await readFile(this.#file(owner, metaId));
      const doc = JSON.parse((await decompressFrame(body, { max: 2 * maxTreeJsonBytes }, 'tree cache')).toString('utf8')) as { object: string; sha256: string; tree: string; stats: Array<[string, string, string]> };
      const { tree } = decodeTree(doc.tree, 'cached tree');
      return { object: doc.object, sha256: doc.sha256, tree, stats: new Map(doc.stats.map(([p, ino, ctime]) => [p, [ino, ctime]])) };
    } catch {
      return undefined;
    }
  }

  async write(owner: string, metaId: string, entry: CachedTree): Promise<void> {
    const file = this.#file(owner, metaId);
    const json = JSON.stringify({ object: entry.object, sha256: entry.sha256, tree: encodeTree(entry.tree), stats: [...entry.stats].map(([p, [ino, ctime]]) => [p, ino, ctime]) });
    const body = await compressFrame(Buffer.from(json), 1);
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    await writeFile(`${file}.tmp`, body, { mode: 0o600 });
    await rename(`${file}.tmp`, file);
  }

  async forget(owner: string, metaId: string): Promise<void> {
    await rm(this.#file(owner, metaId), { force: true });
  }

  #file(owner: string, metaId: string): string {
    return path.join(this.#dir, `${createHash('sha256').update(`${owner}\0${metaId}`).digest('hex')}.zst`);
  }
}

