import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { BackupStore } from '../../core/content/backup-store.js';
import type { ContentInitializer, InitializeOptions } from '../../core/initializer/content-initializer.js';
import { InitializerRegistry } from '../../core/initializer/initializer-registry.js';
import { createLogger } from '../../core/observability/logger.js';
import type { StorageBackend } from '../../core/storage/storage-backend.js';
import { memoryStorage } from './fakes.js';
import { tempDir } from './temp-dir.js';

export interface InitializerRun<Spec> {
  options: InitializeOptions<Spec>;
  /** The workspace folder (empty, inside `sandbox`). */
  dir: string;
  /** The folder around `dir`: anything that appears here besides `dir` escaped the workspace. */
  sandbox: string;
  /** Every log line written, as text. */
  logs: string[];
}

/** Everything an initializer gets, for calling one directly in a test. */
export function initializerRun<Spec>(
  spec: Spec,
  options: { storage?: StorageBackend; initializers?: ContentInitializer[]; signal?: AbortSignal } = {},
): InitializerRun<Spec> {
  const sandbox = tempDir('wsd-init-');
  const dir = path.join(sandbox, 'workspace');
  mkdirSync(dir);
  const logs: string[] = [];
  const log = createLogger({ level: 'debug', sink: { write: (line: string) => logs.push(line) } });
  const storage = options.storage ?? memoryStorage();
  return {
    dir,
    sandbox,
    logs,
    options: {
      spec,
      dir,
      workspace: { id: 'ws', owner: 'owner', metaId: 'meta' },
      storage,
      archives: new BackupStore(storage, log),
      initializers: new InitializerRegistry(options.initializers ?? []),
      signal: options.signal ?? new AbortController().signal,
      log,
    },
  };
}
