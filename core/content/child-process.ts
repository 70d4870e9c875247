import type { ChildProcess } from 'node:child_process';

/** Resolves with the exit code once `child` has exited; rejects if it could not be started (e.g. not installed). */
export function exitOf(child: ChildProcess, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT' ? new Error(`${name} is not installed (needed for archives)`) : error),
    );
    child.once('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** Keeps the last `limit` characters of a child's stderr for error messages. */
export function captureTail(stream: NodeJS.ReadableStream | null, limit = 4000): () => string {
  let text = '';
  stream?.on('data', (chunk: Buffer) => {
    text = (text + chunk.toString()).slice(-limit);
  });
  return () => text.trim();
}
