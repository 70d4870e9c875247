import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { WsdError } from '../errors.js';

/**
 * Exclusive ownership of the folders one daemon works in (the data folder and the working area), held for the
 * daemon's life.
 *
 * Why `flock(1)` in a helper process: Node has no `flock`, and a lock must be released by the kernel when its holder
 * dies — a pid file goes stale after `kill -9` and cannot be checked across pid namespaces (two pods on one
 * hostPath). `flock --nonblock` takes an advisory lock on each file and then runs `cat` with the daemon's pipe as
 * stdin; when the daemon exits, however it exits, the pipe closes, `cat` ends, and the kernel drops the locks.
 * flock locks hold across processes, containers and pid namespaces sharing the file system.
 *
 * Beside each lock file, `<lock>.holder` names the holder (pid, host, start time) so a second daemon can say who
 * holds it. That file is information only; the lock is the kernel's.
 */
export interface FolderLock {
  /** Releases every lock (ends the helper) and waits until the kernel has dropped them. Idempotent. */
  release(): Promise<void>;
}

export interface LockTarget {
  /** The folder, named in messages. */
  folder: string;
  /** What the folder is, for messages: "data folder", "working area". */
  role: string;
}

/** Lock file inside a folder; hidden, and no workspace id can start with a dot. */
export const lockFileName = '.wsd.lock';

/** flock's exit code when a lock is held elsewhere; one per target, so the message names the right folder. */
const conflictBase = 70;

export async function lockFolders(targets: LockTarget[]): Promise<FolderLock> {
  if (targets.length === 0 || targets.length > 9) throw new Error('lockFolders takes 1 to 9 folders');
  // flock A flock B … sh -c 'echo locked; exec cat': each level takes one lock and runs the next; the last level
  // reports that all are held and then waits for the daemon's stdin to close. The shell text is constant: folder
  // paths are arguments of flock, never shell text.
  const lockArgs = (target: LockTarget, index: number) => ['--nonblock', '--conflict-exit-code', String(conflictBase + index), path.join(target.folder, lockFileName)];
  const args = lockArgs(targets[0]!, 0);
  targets.slice(1).forEach((target, index) => args.push('flock', ...lockArgs(target, index + 1)));
  args.push('/bin/sh', '-c', 'echo locked; exec cat');
  const child = spawn('flock', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  const exited = new Promise<{ code: number | null; error?: Error }>((resolve) => {
    child.once('exit', (code) => resolve({ code }));
    child.once('error', (error) => resolve({ code: null, error }));
  });
  const locked = new Promise<boolean>((resolve) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve(line === 'locked'));
    void exited.then(() => resolve(false));
  });

  if (!(await locked)) {
    const { code, error } = await exited;
    const index = code === null ? -1 : code - conflictBase;
    const target = targets[index];
    if (target) {
      const holder = await readHolder(target.folder);
      throw new WsdError(
        'FAILED_PRECONDITION',
        `the ${target.role} ${target.folder} is in use by another wsd${holder ? ` (${holder})` : ''}: one daemon per ${target.role}; stop it or configure another dataDir/workingArea`,
      );
    }
    if ((error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
      throw new WsdError('FAILED_PRECONDITION', 'wsd needs flock(1) from util-linux to lock its data folder; install util-linux');
    }
    throw new WsdError('INTERNAL', `could not lock ${targets.map((t) => t.folder).join(' and ')}: ${error?.message ?? (stderr.trim() || `flock exited ${code}`)}`);
  }

  // The helper lives as long as the daemon; it must never keep the event loop alive on its own, except while a
  // release waits for it to end (else the process could exit with that wait, and whatever follows it, pending).
  const handles = [child, child.stdin, child.stdout, child.stderr] as unknown as Array<{ ref?: () => void; unref?: () => void }>;
  handles.forEach((h) => h.unref?.());
  await Promise.all(targets.map((t) => writeHolder(t.folder).catch(() => {})));

  let released: Promise<void> | undefined;
  return {
    release: () =>
      (released ??= (async () => {
        handles.forEach((h) => h.ref?.());
        child.stdin!.end();
        await exited;
      })()),
  };
}

async function writeHolder(folder: string): Promise<void> {
  const text = `pid ${process.pid} on ${os.hostname()} since ${new Date().toISOString()}\n`;
  await writeFile(path.join(folder, `${lockFileName}.holder`), text, { mode: 0o644 });
}

async function readHolder(folder: string): Promise<string | undefined> {
  const text = await readFile(path.join(folder, `${lockFileName}.holder`), 'utf8').catch(() => '');
  // Written by a daemon, but the folder may be shared: keep it to one short printable line.
  const line = text.split('\n')[0]!.replace(/[^\x20-\x7e]/g, '').slice(0, 200);
  return line || undefined;
}
