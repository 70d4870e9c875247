import type { ProgressReporter, ProgressUpdate } from '../initializer/content-initializer.js';
import { scrubSecrets } from '../observability/redact.js';

/** The operations whose progress is reported; periodic backups apart, so a caller's own backup is told from them. */
export type OperationKind = 'init' | 'backup' | 'periodic-backup' | 'snapshot' | 'dispose';

/** Where an operation is, as `GetOperationProgress` reports it. */
export interface OperationProgress {
  operation: OperationKind;
  /** What it does now (`archiving`, `cloning`, …), then `done` or `failed`. */
  phase: string;
  done: boolean;
  /** Bytes moved in the current phase so far. */
  bytes: number;
  /** Bytes the current phase moves in all; 0 when unknown. */
  totalBytes: number;
  /** Entries handled so far. */
  files: number;
  startedAt: string;
  updatedAt: string;
  error?: string;
}

/** Workspaces whose finished operations are remembered (after a dispose too); the oldest finished are forgotten first. */
const rememberedWorkspaces = 256;

/**
 * The latest operation of each kind per workspace, in memory: fed by the operations as they go (phases, byte and
 * file counts), read by `GetOperationProgress` callers polling while their own call runs. A finished operation
 * stays until the next of its kind, so a poll after the call returns still sees its last phase and counts.
 */
export class ProgressBoard {
  readonly #byWorkspace = new Map<string, Map<OperationKind, OperationProgress>>();

  /** Starts reporting a new operation of `kind` on workspace `id` (replacing the last one of that kind). */
  start(id: string, operation: OperationKind, phase = 'waiting'): ProgressTracker {
    const now = new Date().toISOString();
    const progress: OperationProgress = { operation, phase, done: false, bytes: 0, totalBytes: 0, files: 0, startedAt: now, updatedAt: now };
    let kinds = this.#byWorkspace.get(id);
    if (kinds) this.#byWorkspace.delete(id); // re-inserted: most recently used last
    kinds ??= new Map();
    kinds.set(operation, progress);
    this.#byWorkspace.set(id, kinds);
    // Forget the least recently started workspaces whose operations have all finished; running ones stay.
    for (const [other, ops] of this.#byWorkspace) {
      if (this.#byWorkspace.size <= rememberedWorkspaces) break;
      if ([...ops.values()].every((p) => p.done)) this.#byWorkspace.delete(other);
    }
    return new ProgressTracker(progress);
  }

  /** Copies of the operations known for `id`, most recently started first; undefined when none is known. */
  get(id: string): OperationProgress[] | undefined {
    const kinds = this.#byWorkspace.get(id);
    if (!kinds) return undefined;
    return [...kinds.values()].map((p) => ({ ...p })).sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  }
}

/** The writing side of one operation's progress. */
export class ProgressTracker {
  readonly #progress: OperationProgress;

  constructor(progress: OperationProgress) {
    this.#progress = progress;
  }

  /**
   * Applies a report. Counts carry over into later phases until a phase reports its own (a backup's `committing`
   * and `done` still show the bytes archived). Ignored once the operation is done.
   */
  readonly report: ProgressReporter = (update: ProgressUpdate) => {
    const p = this.#progress;
    if (p.done) return;
    if (update.phase !== undefined) p.phase = update.phase;
    if (update.bytes !== undefined) p.bytes = update.bytes;
    if (update.totalBytes !== undefined) p.totalBytes = update.totalBytes;
    if (update.files !== undefined) p.files = update.files;
    p.updatedAt = new Date().toISOString();
  };

  /** Marks the operation done (keeping the last counts) or failed with `error`. */
  finish(error?: unknown): void {
    const p = this.#progress;
    if (p.done) return;
    Object.assign(p, { done: true, phase: error === undefined ? 'done' : 'failed', updatedAt: new Date().toISOString() });
    // The text may quote a URL from the request: never its credentials.
    if (error !== undefined) p.error = scrubSecrets(error instanceof Error ? error.message : String(error));
  }

  /** Runs `work`, finishing the tracker with its outcome. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    try {
      const result = await work();
      this.finish();
      return result;
    } catch (error) {
      this.finish(error);
      throw error;
    }
  }
}
