import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { ChildStdin, exitOf } from '../../core/content/child-process.js';

// tar stops reading after the end-of-archive record and exits; node then destroys its stdin. When the rest of the
// stream (zstd's last flush, the storage stream's end) arrived a moment later, a plain pipeline into tar's stdin
// failed with "Premature close", and restoring a good archive failed with DATA_LOSS: 4 of 30 restores in a loop on
// a loaded machine (issue 11, ADR 0003 "Stress"). A child that reads part of its input and exits reproduces it.
/** 4 KiB, then — once `gap` resolves (the child has exited, or a moment passed) — 4 KiB more. */
const source = (gap: Promise<unknown>) =>
  Readable.from(
    (async function* () {
      yield Buffer.alloc(4096, 1);
      await gap;
      yield Buffer.alloc(4096, 2);
    })(),
  );

describe('writing into a child that exits before its input ends', () => {
  it('a plain pipeline reports the early close as an error (the bug)', async () => {
    const child = spawn('head', ['-c', '100'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const exited = exitOf(child, 'head');
    await assert.rejects(pipeline(source(exited), child.stdin), /Premature close|EPIPE|write after end|destroyed/);
    assert.equal(await exited, 0);
  });

  it('ChildStdin swallows the rest and says the child closed early; the exit code decides', async () => {
    const child = spawn('head', ['-c', '100'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const exited = exitOf(child, 'head');
    const sink = new ChildStdin(child.stdin);
    await pipeline(source(exited), sink);
    assert.equal(await exited, 0);
    assert.equal(sink.closedEarly, true);
  });

  it('ChildStdin passes everything to a child that reads it all', async () => {
    const child = spawn('wc', ['-c'], { stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exited = exitOf(child, 'wc');
    const sink = new ChildStdin(child.stdin);
    await pipeline(source(sleep(50)), sink);
    assert.equal(await exited, 0);
    assert.equal(out.trim(), '8192');
    assert.equal(sink.closedEarly, false);
  });

  it('ChildStdin fails at once when the child closes its input before it may (tar died mid-archive)', async () => {
    const child = spawn('head', ['-c', '100'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const exited = exitOf(child, 'head');
    const sink = new ChildStdin(child.stdin, () => false);
    await assert.rejects(pipeline(source(exited), sink), /stopped reading|EPIPE|destroyed/);
    assert.equal(await exited, 0);
  });
});
