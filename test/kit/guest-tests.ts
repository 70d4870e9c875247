import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { GuestTestEvent } from './guest-test-reporter.js';
import { runInGuest, type GuestRunOptions, type GuestRunResult } from './guest-vm.js';

export interface GuestTestFileOptions extends Omit<GuestRunOptions, 'command'> {
  /** The compiled test file to run in the guest (absolute, or a `file:` URL such as `new URL('./x.guest.js', import.meta.url)`). */
  file: string | URL;
  /** Extra arguments for node (before `--test`). */
  nodeArgs?: string[];
}

export interface GuestTestFileRun {
  run: GuestRunResult;
  /** Every finished test and suite in the guest, in the order node reported them (children before their suite). */
  events: GuestTestEvent[];
}

/**
 * Boots the test guest once and runs one compiled node:test file in it (`node --test`, the spec reporter on the
 * console, and test/kit/guest-test-reporter.js writing one JSON line per test into the results folder).
 */
export async function runTestFileInGuest(options: GuestTestFileOptions): Promise<GuestTestFileRun> {
  const { file, nodeArgs = [], ...rest } = options;
  const testFile = file instanceof URL ? fileURLToPath(file) : path.resolve(file);
  if (!existsSync(testFile)) throw new Error(`no compiled guest test at ${testFile}: run \`npx tsc -p tsconfig.json\``);
  const reporter = fileURLToPath(new URL('./guest-test-reporter.js', import.meta.url));
  const events = '/run/wsd-guest/results/events.jsonl';
  const run = await runInGuest({
    ...rest,
    // The console is read by people and by the failure messages here: no colour codes.
    env: { NO_COLOR: '1', ...rest.env },
    command: [
      process.execPath,
      ...nodeArgs,
      '--test',
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      `--test-reporter=${reporter}`,
      `--test-reporter-destination=${events}`,
      testFile,
    ],
  });
  const eventsFile = path.join(run.resultsDir, 'events.jsonl');
  const lines = existsSync(eventsFile) ? readFileSync(eventsFile, 'utf8').split('\n').filter(Boolean) : [];
  return { run, events: lines.map((line) => JSON.parse(line) as GuestTestEvent) };
}

/**
 * Runs a guest test file (see {@link runTestFileInGuest}) and reports each of its cases as a subtest of `t` — named
 * `<suite> › <case>`, passing, failing with the guest's error, or skipped with its reason — plus the run's boot and
 * total wall time as diagnostics. Fails when the guest's node exited non-zero or ran no test at all.
 */
export async function runGuestTestFile(t: TestContext, options: GuestTestFileOptions): Promise<GuestTestFileRun> {
  let result: GuestTestFileRun;
  try {
    result = await runTestFileInGuest(options);
  } catch (error) {
    throw new Error(`the guest run of ${String(options.file)} failed: ${(error as Error).message}`);
  }
  const { run, events } = result;
  t.diagnostic(`guest run: ${(run.durationMs / 1000).toFixed(1)} s wall time, command started after ${(run.bootMs / 1000).toFixed(1)} s`);
  for (const test of withSuitePaths(events)) {
    const name = [...test.suites, test.event.name].join(' › ');
    if (test.event.status === 'skip' || test.event.status === 'todo') {
      await t.test(name, { skip: test.event.reason ?? test.event.status }, () => {});
    } else {
      await t.test(name, (sub) => {
        sub.diagnostic(`${(test.event.durationMs / 1000).toFixed(1)} s in the guest`);
        if (test.event.status === 'fail') throw new Error(`failed in the guest:\n${test.event.error ?? '(no error text)'}`);
      });
    }
  }
  assert.ok(
    events.some((e) => !e.suite && e.status === 'pass'),
    `no test passed in the guest (exit ${run.exitCode}); the console's last lines:\n${run.output.slice(-4000)}`,
  );
  assert.equal(run.exitCode, 0, `node --test exited with ${run.exitCode} in the guest; the console's last lines:\n${run.output.slice(-4000)}`);
  return result;
}

/** Leaf tests with the names of their enclosing suites (node reports a suite after its children). */
function withSuitePaths(events: GuestTestEvent[]): Array<{ event: GuestTestEvent; suites: string[] }> {
  const leaves: Array<{ event: GuestTestEvent; parents: Map<number, string> }> = [];
  for (const event of events) {
    if (!event.suite) {
      leaves.push({ event, parents: new Map() });
      continue;
    }
    for (const leaf of leaves) {
      if (leaf.event.nesting > event.nesting && !leaf.parents.has(event.nesting)) leaf.parents.set(event.nesting, event.name);
    }
  }
  return leaves.map(({ event, parents }) => ({ event, suites: [...parents.entries()].sort(([a], [b]) => a - b).map(([, name]) => name) }));
}
