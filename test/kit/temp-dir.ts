import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const created: string[] = [];
let cleanupRegistered = false;

/** A fresh folder under the OS temp folder, removed when the test process exits (set WSD_KEEP_TEMP=1 to keep). */
export function tempDir(prefix = 'wsd-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
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
