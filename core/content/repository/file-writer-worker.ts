import { closeSync, constants, fchmodSync, fchownSync, futimesSync, openSync, writeSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

/** One whole small file to create (see file-writer-pool.ts). */
export interface WholeFileJob {
  /** Below the pinned staging folder (`/proc/self/fd/N/...`): the descriptor is the process's, shared by threads. */
  path: string;
  data: Uint8Array;
  mode: number;
  owner?: [number, number];
  /** Seconds since the epoch. */
  mtime: number;
}

export interface WriterReply {
  id: number;
  error?: { message: string; code?: string; errno?: number };
}

// Creating a file costs ~80 µs of system time here (inode, directory entry); done in this thread, while the main
// thread fetches, decodes and verifies the next chunks.
parentPort!.on('message', ({ id, jobs }: { id: number; jobs: WholeFileJob[] }) => {
  try {
    for (const job of jobs) {
      const fd = openSync(job.path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        writeSync(fd, job.data, 0, job.data.length, 0);
        if (job.owner) fchownSync(fd, job.owner[0], job.owner[1]);
        fchmodSync(fd, job.mode);
        futimesSync(fd, job.mtime, job.mtime);
      } finally {
        closeSync(fd);
      }
    }
    parentPort!.postMessage({ id } satisfies WriterReply);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    parentPort!.postMessage({ id, error: { message: e.message, ...(e.code ? { code: e.code } : {}), ...(e.errno !== undefined ? { errno: e.errno } : {}) } } satisfies WriterReply);
  }
});
