import type { ArchiveService } from './archive-service.js';
import type { Logger } from '../observability/logger.js';
import { createToken } from '../kernel/token.js';
import type { StorageBackend } from '../storage/storage-backend.js';

/**
 * ContentInitializer — fills a fresh workspace folder with content: one implementation per initializer kind of the
 * API (`empty`, `git`, `snapshot`, `backup`, `prebuild`, `composite`, `download`).
 *
 * - `dir` exists and is empty when `initialize` is called, and nothing outside it may be written. Paths taken from
 *   the spec (checkout locations, file paths) are validated to stay inside `dir` (`INVALID_ARGUMENT` otherwise).
 * - On failure the caller wipes `dir`; an initializer need not clean up after itself, but must not leave processes
 *   running. Failures: `INVALID_ARGUMENT` (a bad spec, with `field`), `NOT_FOUND` (a snapshot or backup that does not
 *   exist — never silently an empty folder), `PERMISSION_DENIED` (credentials refused), `FAILED_PRECONDITION`
 *   (anything else that makes the content impossible), `UNAVAILABLE` (transient, after the initializer's own retries).
 * - `signal` aborts the work (daemon shutdown); a client disconnect does not.
 * - Composite kinds call others through `initializers`, never by importing them.
 */
export interface ContentInitializer<Spec = unknown> {
  /** The initializer kind this handles, as named in the API's `WorkspaceInitializer.spec` oneof. */
  readonly kind: string;
  initialize(options: InitializeOptions<Spec>): Promise<InitializeResult>;
  /**
   * A copy of `spec` fit to persist and log: every credential the kind's spec can carry replaced. Core persists
   * the spec (the state file) only through this, then scrubs URL credentials and presigned queries on top. Kinds
   * whose spec holds no secrets may leave it out. Composite kinds redact their children through `initializers`.
   */
  redact?(spec: Spec, initializers: InitializerLookup): unknown;
  /**
   * The checkout locations the spec creates, relative to the workspace folder, first one first (`''` is the folder
   * itself): where DisposeWorkspace reads the git status. Kinds that create no checkout leave it out.
   */
  checkoutLocations?(spec: Spec, initializers: InitializerLookup): string[];
}

export interface InitializeOptions<Spec = unknown> {
  spec: Spec;
  /** Absolute path of the workspace folder. */
  dir: string;
  workspace: { id: string; owner: string; metaId: string };
  storage: StorageBackend;
  /**
   * Backups and snapshots of this node's storage, restored under the node's policy (ownership, hostile-archive
   * checks, digest verification). Initializers that restore archives use this, never their own extraction.
   */
  archives: ArchiveService;
  initializers: InitializerLookup;
  signal: AbortSignal;
  log: Logger;
  /** When set (daemon running as root), content is created as this user: run child processes as it. */
  user?: { uid: number; gid: number };
  /** The workspace's disk quota in bytes (absent or 0: none). Restores pass it on: an archive larger stops early. */
  quotaBytes?: number;
  /**
   * Where to report what the initializer is doing, for the caller's progress display (`GetOperationProgress`):
   * a phase when it changes (`cloning`, `fetching commit`, …), bytes and files when it can count them. Cheap to
   * call often; absent when nobody listens. Restores through `archives` report on their own.
   */
  progress?: ProgressReporter;
}

/** One progress report: any of the fields, each replacing what was reported before. */
export interface ProgressUpdate {
  /** What the operation is doing now, in a few words (`archiving`, `cloning`). */
  phase?: string;
  /** Bytes moved so far in this phase. */
  bytes?: number;
  /** Bytes this phase will move in all, when known. */
  totalBytes?: number;
  /** Entries (files, folders, links) handled so far. */
  files?: number;
}

export type ProgressReporter = (update: ProgressUpdate) => void;

export interface InitializerLookup {
  /** The initializer for `kind`, or `FAILED_PRECONDITION` when no such plugin is enabled. */
  get(kind: string): ContentInitializer;
}

/** Where the content came from; written into the ready marker and reported to the workspace manager. */
export type ContentSource = 'from-backup' | 'from-prebuild' | 'from-other';

export interface InitializeResult {
  source: ContentSource;
  /** One entry per initializer that ran (a composite yields its children's). */
  stats: InitializerStats[];
  /**
   * What did not go as the spec asked although the content is usable — a branch that does not exist (the default
   * branch was cloned), submodules or an upstream left out — in sentences for the person who asked. Returned to
   * the caller of InitWorkspace (admin API) and shown by describe. A composite yields its children's.
   */
  warnings?: string[];
}

export interface InitializerStats {
  kind: string;
  durationMs: number;
  /** Bytes of content written or downloaded, when known. */
  bytes?: number;
}

export const contentInitializerToken = createToken<ContentInitializer>('wsd.initializer.v1', { multiple: true });
