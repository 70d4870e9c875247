import { Worker } from 'node:worker_threads';

/** What a backup needs of an entry's `lstat`: plain values (they cross from the scanning thread). */
export interface ScannedStat {
  kind: 'dir' | 'file' | 'symlink' | 'fifo' | 'char' | 'block';
  /** Permission bits with setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Nanoseconds, as decimal strings (a double cannot hold them). */
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
  dev: string;
  nlink: number;
  /** Devices: [major, minor]. */
  rdev: [number, number];
}

export interface ScannedEntry {
  path: string;
  stat: ScannedStat;
}

export type ScanReply = { entries: ScannedEntry[] } | { error: { message: string; code?: string; nonUtf8?: string } };

/** A name in the tree that is not valid UTF-8: the chunked format carries names as text (ADR 0007). */
export class NonUtf8NameError extends Error {
  constructor(readonly path: string) {
    super(`${JSON.stringify(path)} is not a valid UTF-8 name`);
  }
}

/**
 * Every entry below `root` (the root itself first, as `''`), each folder's names in byte order and a folder before
 * what it holds, with what `lstat` says of it. `exclude` lists relative paths left out. Entries that vanish while
 * scanning are skipped, as tar skips them; so are sockets. The walk runs in a thread of its own
 * (tree-scanner-worker.ts): the event loop stays free, and synchronous calls there cost a fraction of promises.
 */
export function scanTree(root: string, options: { exclude?: string[] } = {}): Promise<ScannedEntry[]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./tree-scanner-worker.js', import.meta.url), { workerData: { root, exclude: options.exclude ?? [] } });
    let settled = false;
    worker.once('message', (reply: ScanReply) => {
      settled = true;
      void worker.terminate();
      if ('entries' in reply) return resolve(reply.entries);
      if (reply.error.nonUtf8 !== undefined) return reject(new NonUtf8NameError(reply.error.nonUtf8));
      reject(Object.assign(new Error(`scanning ${root}: ${reply.error.message}`), { code: reply.error.code }));
    });
    worker.once('error', (error) => {
      if (!settled) reject(error);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`scanning ${root}: the scanning thread exited with code ${code}`));
    });
  });
}
