import { Worker } from 'node:worker_threads';
import type { WholeFileJob, WriterReply } from './file-writer-worker.js';

/**
 * Threads that create whole small files with synchronous system calls, so a restore creates files on more than one
 * core while the main thread fetches, decodes and verifies chunks (creating 28k files took ~2.4 s of the main
 * thread alone). Batches go to the thread with the least work queued.
 */
export class FileWriterPool {
  readonly #workers: Array<{ worker: Worker; queued: number }>;
  readonly #waiting = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  #next = 0;
  #failure: Error | undefined;

  constructor(size: number) {
    this.#workers = Array.from({ length: size }, () => {
      const worker = new Worker(new URL('./file-writer-worker.js', import.meta.url));
      const slot = { worker, queued: 0 };
      worker.on('message', (reply: WriterReply) => {
        slot.queued--;
        const waiter = this.#waiting.get(reply.id);
        this.#waiting.delete(reply.id);
        if (!reply.error) return waiter?.resolve();
        waiter?.reject(Object.assign(new Error(reply.error.message), { code: reply.error.code, errno: reply.error.errno }));
      });
      worker.on('error', (error) => this.#fail(error));
      worker.on('exit', (code) => {
        if (code !== 0) this.#fail(new Error(`a file writer thread exited with code ${code}`));
      });
      return slot;
    });
  }

  /** Creates every file of `jobs` (in order, in one thread); rejects with the first failure. */
  write(jobs: WholeFileJob[]): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    const slot = this.#workers.reduce((a, b) => (b.queued < a.queued ? b : a));
    const id = this.#next++;
    slot.queued++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      slot.worker.postMessage({ id, jobs });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map(({ worker }) => worker.terminate()));
    this.#fail(new Error('the file writer threads were stopped'));
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const waiter of this.#waiting.values()) waiter.reject(error);
    this.#waiting.clear();
  }
}
