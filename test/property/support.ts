/**
 * Shared pieces of the property tests under test/property/: fixed seeds, run counts, and the checks every property
 * makes after a run — only WsdErrors, nothing written outside the folder, no process left behind.
 *
 * `WSD_PROPERTY_RUNS=<factor>` multiplies every file's run count (e.g. 20 for a long fuzzing session);
 * `WSD_PROPERTY_SEED=<n>` replaces the fixed seeds (a failure report names the seed and path to replay it).
 */
import assert from 'node:assert/strict';
import { lstatSync, readdirSync, readFileSync, type Stats } from 'node:fs';
import { isWsdError } from '../../core/errors.js';

/** The seed of one property: fixed, so a failure found once is found again. */
export function seedFor(fixed: number): number {
  const override = process.env.WSD_PROPERTY_SEED;
  return override ? Number(override) : fixed;
}

/** A property's run count, scaled by WSD_PROPERTY_RUNS. */
export function runsFor(base: number): number {
  const factor = Number(process.env.WSD_PROPERTY_RUNS ?? '1');
  return Math.max(1, Math.round(base * (Number.isFinite(factor) && factor > 0 ? factor : 1)));
}

/** Options for fc.assert: the fixed seed and run count. */
export function assertOptions(seed: number, numRuns: number, extra: Record<string, unknown> = {}) {
  return { seed: seedFor(seed), numRuns: runsFor(numRuns), ...extra };
}

/** Fails unless `error` is undefined or a WsdError; the message says what was thrown instead. */
export function assertOnlyWsdError(error: unknown, context = ''): void {
  if (error === undefined || isWsdError(error)) return;
  const shown = error instanceof Error ? `${error.constructor.name} (${(error as NodeJS.ErrnoException).code ?? 'no code'}): ${error.message}\n${error.stack}` : String(error);
  assert.fail(`${context ? `${context}: ` : ''}expected a WsdError or success, got a non-WsdError: ${shown}`);
}

/** Runs `fn`, returning what it threw (or undefined). */
export async function caught(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
    return undefined;
  } catch (error) {
    return error;
  }
}

/**
 * Every entry under `root`, recursively, never following symlinks, with its lstat. Names are read as bytes (an
 * archive may create names that are not UTF-8); `rel` shows them decoded, for messages.
 */
export function walkEntries(root: string): Array<{ rel: string; info: Stats }> {
  const out: Array<{ rel: string; info: Stats }> = [];
  const visit = (dir: Buffer, prefix: string) => {
    let names: Buffer[];
    try {
      names = readdirSync(dir, { encoding: 'buffer' });
    } catch {
      return;
    }
    for (const name of names) {
      const full = Buffer.concat([dir, Buffer.from('/'), name]);
      const rel = prefix ? `${prefix}/${name.toString('utf8')}` : name.toString('utf8');
      let info: Stats;
      try {
        info = lstatSync(full);
      } catch {
        continue;
      }
      out.push({ rel, info });
      if (info.isDirectory()) visit(full, rel);
    }
  };
  visit(Buffer.from(root), '');
  return out.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

/** Every entry under `root` (relative paths, recursively, never following symlinks). */
export function walk(root: string): string[] {
  return walkEntries(root).map((e) => e.rel);
}

/** Entries of `sandbox` other than `keep`: anything here escaped the folder it was meant for. */
export function escapedInto(sandbox: string, keep: string[]): string[] {
  return readdirSync(sandbox).filter((name) => !keep.includes(name));
}

/** The names in `/` now; a run compares against what was there just before it (other processes may add some). */
export function rootEntries(): Set<string> {
  return new Set(readdirSync('/'));
}

/** Entries of `/` that were not in `before`. */
export function newRootEntries(before: Set<string>): string[] {
  return readdirSync('/').filter((name) => !before.has(name));
}

// ---- processes ----

export interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  state: string;
  cmdline: string;
}

/** Every process on the machine (Linux /proc), with parent, group and command line; vanished ones are skipped. */
export function processes(): ProcInfo[] {
  const out: ProcInfo[] = [];
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      // "pid (comm) state ppid pgrp ..." — comm may hold spaces and parentheses: split after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0').filter(Boolean).join(' ');
      out.push({ pid: Number(name), state: fields[0]!, ppid: Number(fields[1]), pgid: Number(fields[2]), cmdline });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Live (non-zombie) descendants of `root` (default: this process). */
export function descendants(root = process.pid, all = processes()): ProcInfo[] {
  const children = new Map<number, ProcInfo[]>();
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const out: ProcInfo[] = [];
  const queue = [root];
  while (queue.length) {
    for (const child of children.get(queue.shift()!) ?? []) {
      if (child.state !== 'Z') out.push(child);
      queue.push(child.pid);
    }
  }
  return out;
}

/** Live processes whose command line or environment mentions `text` (a canary path, a marker), this one excepted. */
export function processesMentioning(text: string, all = processes()): ProcInfo[] {
  const needle = Buffer.from(text);
  return all.filter((p) => {
    if (p.pid === process.pid || p.state === 'Z') return false;
    if (p.cmdline.includes(text)) return true;
    try {
      return readFileSync(`/proc/${p.pid}/environ`).includes(needle);
    } catch {
      return false;
    }
  });
}

/**
 * Waits up to `timeoutMs` for this process to have no live descendant and no process mentioning any of `needles`
 * (a helper that was re-parented to init still carries them); returns what is still there.
 */
export async function leftoverProcesses(needles: string[], timeoutMs = 3000): Promise<ProcInfo[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const all = processes();
    const seen = new Map<number, ProcInfo>();
    for (const p of descendants(process.pid, all)) seen.set(p.pid, p);
    for (const needle of needles) for (const p of processesMentioning(needle, all)) seen.set(p.pid, p);
    const left = [...seen.values()];
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** SIGKILLs `left` (what a failed run left behind), so that later runs start clean. */
export function killAll(left: ProcInfo[]): void {
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}
