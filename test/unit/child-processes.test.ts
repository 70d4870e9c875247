import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  configureChildProcesses,
  endAllChildren,
  listMarkedProcesses,
  markerFor,
  spawnTracked,
  sweepOrphans,
} from '../../core/process/child-processes.js';
import { running, until } from '../kit/polling.js';
import { tempDir } from '../kit/temp-dir.js';

const linux = existsSync('/proc/self/environ');
const skip = linux ? false : 'needs /proc (Linux)';
const newMarker = () => `test-${randomBytes(8).toString('hex')}`;
const moduleUrl = new URL('../../core/process/child-processes.js', import.meta.url).href;


const sleeps = async (marker: string) => (await listMarkedProcesses(marker)).filter((p) => p.command.startsWith('sleep'));

/** Test cleanup: SIGKILLs whatever still carries `marker` (every test's processes carry a marker of their own). */
async function killMarked(...markers: string[]): Promise<void> {
  for (const marker of markers) {
    for (const p of await listMarkedProcesses(marker)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/**
 * What a daemon killed with -9 leaves behind: a separate node process that starts a tracked `command` with `marker`
 * and then SIGKILLs itself. Resolves with the orphan's pid once the "daemon" is dead.
 */
async function orphanOfKilledDaemon(marker: string, command: string, args: string[]): Promise<number> {
  const script = `
    const { configureChildProcesses, spawnTracked } = await import(${JSON.stringify(moduleUrl)});
    configureChildProcesses({ marker: ${JSON.stringify(marker)} });
    const child = spawnTracked(${JSON.stringify(command)}, ${JSON.stringify(args)}, { stdio: 'ignore' });
    process.stdout.write(String(child.pid));
    process.kill(process.pid, 'SIGKILL');`;
  const daemon = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  daemon.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  daemon.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const [, signal] = (await once(daemon, 'close')) as [number | null, NodeJS.Signals | null];
  assert.equal(signal, 'SIGKILL', stderr);
  const pid = Number(stdout);
  assert.ok(pid > 0, `orphan pid: ${stdout} ${stderr}`);
  return pid;
}

describe('child processes', () => {
  it('markerFor names the real data folder: stable across spellings and symlinks, distinct per folder', () => {
    const root = tempDir('wsd-marker-');
    mkdirSync(path.join(root, 'data'));
    symlinkSync(path.join(root, 'data'), path.join(root, 'link'));
    const marker = markerFor(path.join(root, 'data'));
    assert.match(marker, /^[0-9a-f]{16}$/);
    assert.equal(markerFor(path.join(root, 'link')), marker);
    assert.equal(markerFor(`${root}/./data/`), marker);
    assert.notEqual(markerFor(path.join(root, 'other')), marker);
    const later = markerFor(path.join(root, 'link', 'not-yet'));
    mkdirSync(path.join(root, 'data', 'not-yet'));
    assert.equal(markerFor(path.join(root, 'data', 'not-yet')), later, 'the same marker before and after the folder exists');
  });

  it('abort kills the whole process tree, and the child reports an AbortError as with node’s own signal', { skip }, async () => {
    const marker = newMarker();
    configureChildProcesses({ marker });
    try {
      const controller = new AbortController();
      const child = spawnTracked('sh', ['-c', 'sleep 300 & sleep 300 & wait'], { stdio: 'ignore', signal: controller.signal });
      const failed = once(child, 'error');
      await until(async () => (await sleeps(marker)).length === 2, 'both sleeps carrying the marker');
      controller.abort();
      const [error] = (await failed) as [Error];
      assert.equal(error.name, 'AbortError');
      await until(async () => (await listMarkedProcesses(marker)).length === 0, 'no process with the marker left');
    } finally {
      configureChildProcesses({ marker: undefined });
      await killMarked(marker);
    }
  });

  it('endAllChildren ends every tracked tree: SIGTERM, SIGKILL for those that ignore it, and what an exited leader left', { skip }, async () => {
    const marker = newMarker();
    configureChildProcesses({ marker });
    try {
      spawnTracked('sh', ['-c', 'sleep 300 & wait'], { stdio: 'ignore' });
      // Ignored signals are inherited: this sh and its sleep both shrug off SIGTERM.
      spawnTracked('sh', ['-c', 'trap "" TERM; sleep 300 & wait'], { stdio: 'ignore' });
      const leftBehind = spawnTracked('sh', ['-c', 'sleep 300 & exit 0'], { stdio: 'ignore' });
      await once(leftBehind, 'exit');
      await until(async () => (await sleeps(marker)).length === 3, 'three sleeps carrying the marker');

      const result = await endAllChildren({ graceMs: 300 });
      assert.deepEqual(result, { signalled: 3, killed: 1, stuck: [] });
      assert.deepEqual(await listMarkedProcesses(marker), [], 'nothing with the marker runs once endAllChildren resolved');
      assert.deepEqual(await endAllChildren({ graceMs: 300 }), { signalled: 0, killed: 0, stuck: [] }, 'ended groups are forgotten');
    } finally {
      configureChildProcesses({ marker: undefined });
      await killMarked(marker);
    }
  });

  it('sweepOrphans ends exactly the orphans of a daemon killed with -9 that had the same marker', { skip }, async () => {
    const marker = newMarker();
    const otherMarker = newMarker();
    const pids: number[] = [];
    try {
      const orphan = await orphanOfKilledDaemon(marker, 'sleep', ['300']);
      pids.push(orphan);
      const otherDaemonsChild = await orphanOfKilledDaemon(otherMarker, 'sleep', ['300']);
      pids.push(otherDaemonsChild);
      assert.equal(await running(orphan), true, 'the sleep outlived its daemon');

      const warnings: Array<Record<string, unknown>> = [];
      const log = { debug() {}, info() {}, error() {}, warn: (msg: string, fields?: Record<string, unknown>) => warnings.push({ msg, ...fields }), child: () => log };
      const ended = await sweepOrphans(marker, { log });
      assert.deepEqual(
        ended.map((p) => ({ pid: p.pid, command: p.command })),
        [{ pid: orphan, command: 'sleep 300' }],
      );
      assert.deepEqual(warnings.map((w) => w.pid), [orphan]);
      assert.equal(await running(orphan), false, 'gone once sweepOrphans resolved');
      assert.equal(await running(otherDaemonsChild), true, "another daemon's child is left alone");
      assert.deepEqual(await sweepOrphans(marker), [], 'nothing left to sweep');
    } finally {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await killMarked(marker, otherMarker);
    }
  });

  it('sweepOrphans also ends members of an orphan’s process group that dropped the marker', { skip }, async () => {
    const marker = newMarker();
    let leader: number | undefined;
    try {
      leader = await orphanOfKilledDaemon(marker, 'sh', ['-c', 'env -u WSD_DAEMON_MARKER sleep 300 & wait']);
      let unmarked: number | undefined;
      await until(async () => {
        const stats = await Promise.all(
          (await readdirNumeric()).map(async (pid) => ({ pid, stat: await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '') })),
        );
        unmarked = stats.find(({ pid, stat }) => pid !== leader && stat.includes('(sleep)') && stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2] === String(leader))?.pid;
        return unmarked !== undefined;
      }, 'the unmarked sleep in the orphan’s group');

      const ended = await sweepOrphans(marker);
      assert.deepEqual(ended.map((p) => p.pid).sort(), [leader, unmarked!].sort());
      assert.equal(await running(unmarked!), false);
    } finally {
      await killMarked(marker);
      try {
        if (leader) process.kill(-leader, 'SIGKILL'); // the orphan leads its own group: the unmarked sleep is in it
      } catch {
        // already gone
      }
    }
  });
});

async function readdirNumeric(): Promise<number[]> {
  return (await readdir('/proc')).filter((n) => /^\d+$/.test(n)).map(Number);
}
