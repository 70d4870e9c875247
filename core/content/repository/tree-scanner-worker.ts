import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, type BigIntStats } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import type { ScannedEntry, ScannedStat, ScanReply } from './tree-scanner.js';

/**
 * The walk of tree-scanner.ts, in a thread of its own with synchronous calls: a `lstat` on the page cache takes
 * microseconds, a promise round trip through the thread pool several times that (28k entries: ~0.1 s here against
 * ~0.6 s of the event loop), and a cold disk blocks this thread, never the daemon's event loop.
 */
const { root, exclude } = workerData as { root: string; exclude: string[] };
const excluded = new Set(exclude);

function describe(st: BigIntStats): ScannedStat | undefined {
  const kind = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : undefined;
  if (!kind) return undefined; // sockets: tar ignores them too
  // glibc's gnu_dev_major/gnu_dev_minor.
  const major = ((st.rdev >> 8n) & 0xfffn) | ((st.rdev >> 32n) & ~0xfffn);
  const minor = (st.rdev & 0xffn) | ((st.rdev >> 12n) & ~0xffn);
  return {
    kind,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: Number(st.size),
    mtimeNs: st.mtimeNs.toString(),
    ctimeNs: st.ctimeNs.toString(),
    ino: st.ino.toString(),
    dev: st.dev.toString(),
    nlink: Number(st.nlink),
    rdev: [Number(major & 0xffffffffn), Number(minor & 0xffffffffn)],
  };
}

/**
 * Lists the folder `dir` (relative), opened by `opening` (its name below the parent's descriptor) without following
 * a symlink and checked to be the folder the parent's listing saw (`expected` dev/ino): every name below is then resolved from that folder
 * (`/proc/self/fd/N/name`), so a workspace user who swaps a folder for a symlink meanwhile points the walk nowhere
 * else. The descriptor is the process's, so the main thread could use it too; it is closed before this returns.
 */
function walk(dir: string, opening: string, expected: ScannedStat, out: ScannedEntry[]): void {
  let fd: number;
  try {
    fd = openSync(opening, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return; // removed or replaced while scanning
    throw error;
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    if (st.dev.toString() !== expected.dev || st.ino.toString() !== expected.ino) return; // replaced while scanning
    const pinned = `/proc/self/fd/${fd}`;
    const raw = readdirSync(pinned, { encoding: 'buffer' });
    raw.sort(Buffer.compare); // byte order of UTF-8 names, the order GNU tar and object stores use
    for (const name of raw) {
      const text = name.toString('utf8');
      const rel = dir === '' ? text : `${dir}/${text}`;
      // Node reads a name that is not UTF-8 as replacement characters: such a file could not be read back by name.
      if (!Buffer.from(text, 'utf8').equals(name)) throw Object.assign(new Error(`${JSON.stringify(rel)} is not a valid UTF-8 name`), { nonUtf8: rel });
      if (excluded.has(rel)) continue;
      let child: BigIntStats;
      try {
        child = lstatSync(`${pinned}/${text}`, { bigint: true });
      } catch {
        continue; // removed while scanning: the next backup sees it
      }
      const stat = describe(child);
      if (!stat) continue;
      out.push({ path: rel, stat });
      if (stat.kind === 'dir') walk(rel, `${pinned}/${text}`, stat, out);
    }
  } finally {
    closeSync(fd);
  }
}

try {
  const top = describe(lstatSync(root, { bigint: true }))!;
  const entries: ScannedEntry[] = [{ path: '', stat: top }];
  walk('', root, top, entries);
  parentPort!.postMessage({ entries } satisfies ScanReply);
} catch (error) {
  const e = error as NodeJS.ErrnoException & { nonUtf8?: string };
  parentPort!.postMessage({ error: { message: e.message, ...(e.code ? { code: e.code } : {}), ...(e.nonUtf8 !== undefined ? { nonUtf8: e.nonUtf8 } : {}) } } satisfies ScanReply);
}
