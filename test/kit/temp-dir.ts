import { accessSync, constants, mkdtempSync, rmSync, statSync, statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const created: string[] = [];
let cleanupRegistered = false;

/**
 * A fresh folder under the OS temp folder, removed when the test process exits (set WSD_KEEP_TEMP=1 to keep).
 * `memory: true` prefers /dev/shm (tmpfs): for tests that move tens of thousands of small files, whose point is
 * correctness, not the speed of this machine's disk.
 */
export function tempDir(prefix = 'wsd-test-', options: { memory?: boolean; base?: string } = {}): string {
  const base = options.base ?? (options.memory && roomyTmpfs('/dev/shm') ? '/dev/shm' : os.tmpdir());
  const dir = mkdtempSync(path.join(base, prefix));
  created.push(dir);
  if (!cleanupRegistered) {
    cleanupRegistered = true;
    process.once('exit', () => {
      if (process.env.WSD_KEEP_TEMP) return;
      for (const d of created) rmSync(d, { recursive: true, force: true });
    });
  }
  return dir;
}

/** Writable, with room for a few copies of a 50k-file tree (a container's default /dev/shm is only 64 MiB). */
function roomyTmpfs(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    const fs = statfsSync(dir);
    return statSync(dir).isDirectory() && fs.bavail * fs.bsize >= 2 * 1024 ** 3 && fs.ffree >= 300_000;
  } catch {
    return false;
  }
}
