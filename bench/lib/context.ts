import type { Line } from './report.js';
import type { TreeInfo } from './tree.js';

/** The groups of figures `--only` picks from. */
export const groups = ['backup', 'restore', 'rss', 'incremental', 'chain', 'minio', 'api', 'start'] as const;
export type Group = (typeof groups)[number];

export interface BenchOptions {
  sizeBytes: number;
  seed: string;
  rounds: number;
  only: Set<Group>;
  /** Increments before the "restore after N increments" figure (the issue: 20). */
  increments: number;
  /** Workspaces planted for the second start-to-ready figure (the issue: 1,000). */
  workspaces: number;
  apiSeconds: number;
  apiConcurrency: number;
  apiConnections: number;
  cacheDir: string;
  resultsDir: string;
  /** Generate (or find) the tree, then stop. */
  prepareOnly: boolean;
}

/** What every group of figures gets: the options, the tree, a scratch folder, and where lines and details go. */
export interface BenchContext {
  options: BenchOptions;
  /** Undefined when no selected group needs a tree (api, start). */
  tree?: TreeInfo;
  /** Scratch space on the tree's file system (folders are filled with hard links to the cached tree). */
  workDir: string;
  log(line: string): void;
  lines: Line[];
  /** Per-round figures and anything else worth keeping in the JSON. */
  details: Record<string, unknown>;
}

export const MiB = 1024 * 1024;

/** Alternates which side goes first, so neither always runs on a cache the other warmed. */
export async function interleaved(round: number, first: () => Promise<void>, second: () => Promise<void>): Promise<void> {
  if (round % 2 === 0) {
    await first();
    await second();
  } else {
    await second();
    await first();
  }
}
