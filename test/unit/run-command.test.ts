import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isWsdError } from '../../core/errors.js';
import { runCommand } from '../../core/process/run-command.js';
import { running, until } from '../kit/polling.js';
import { tempDir } from '../kit/temp-dir.js';

const rejectsWith = async (promise: Promise<unknown>, code: string, pattern: RegExp) =>
  assert.rejects(promise, (error: unknown) => {
    assert.ok(isWsdError(error), `a WsdError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return true;
  });

describe('runCommand', () => {
  it('passes each argument as it is (no shell) and captures stdout and stderr', async () => {
    const dir = tempDir();
    const hostile = `a b; touch ${path.join(dir, 'pwned')} $(id) "q"`;
    const result = await runCommand('sh', ['-c', 'printf "%s" "$1"; printf err >&2', 'sh', hostile], { timeoutMs: 10_000 });
    assert.equal(result.stdout, hostile);
    assert.equal(result.stderr, 'err');
    assert.equal(result.exitCode, 0);
    assert.equal(existsSync(path.join(dir, 'pwned')), false);
  });

  it('fails with the caller\'s code, the command, the exit status and the end of stderr', async () => {
    const run = runCommand('sh', ['-c', 'echo first >&2; echo "target is busy" >&2; exit 32'], {
      timeoutMs: 10_000,
      context: 'cannot unmount /x',
      field: 'quota.loop.imagesDir',
      errorCode: (f) => (f.exitCode === 32 && /busy/.test(f.stderr) ? 'UNAVAILABLE' : undefined),
    });
    await assert.rejects(run, (error: unknown) => {
      assert.ok(isWsdError(error, 'UNAVAILABLE'), String(error));
      assert.match(error.message, /^cannot unmount \/x: sh -c .* exited with status 32: first \| target is busy$/);
      assert.equal(error.field, 'quota.loop.imagesDir');
      return true;
    });
    // Without a mapping: INTERNAL; a fixed code applies to every failure.
    await rejectsWith(runCommand('false', [], { timeoutMs: 10_000 }), 'INTERNAL', /false exited with status 1/);
    await rejectsWith(runCommand('false', [], { timeoutMs: 10_000, errorCode: 'RESOURCE_EXHAUSTED' }), 'RESOURCE_EXHAUSTED', /status 1/);
  });

  it('accepts the exit statuses the caller names', async () => {
    assert.equal((await runCommand('sh', ['-c', 'exit 1'], { timeoutMs: 10_000, okExitCodes: [0, 1] })).exitCode, 1);
  });

  it('a missing program is FAILED_PRECONDITION, naming it', async () => {
    await rejectsWith(runCommand('wsd-no-such-program', ['x'], { timeoutMs: 10_000 }), 'FAILED_PRECONDITION', /wsd-no-such-program x is not installed/);
  });

  it('kills the whole process group at the deadline and fails with DEADLINE_EXCEEDED', async () => {
    const dir = tempDir();
    const pidFile = path.join(dir, 'grandchild.pid');
    // The grandchild would outlive a kill of its parent alone.
    const run = runCommand('sh', ['-c', `sleep 300 & echo $! > ${pidFile}; echo started >&2; wait`], { timeoutMs: 1_500 });
    await rejectsWith(run, 'DEADLINE_EXCEEDED', /did not finish within 1500 ms and was killed: started/);
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    await until(async () => !(await running(grandchild)), 'the grandchild is gone too');
  });

  it('an abort kills it and fails with CANCELLED, whatever the mapping says', async () => {
    const controller = new AbortController();
    const run = runCommand('sleep', ['300'], { timeoutMs: 60_000, signal: controller.signal, errorCode: 'UNAVAILABLE' });
    setImmediate(() => controller.abort());
    await rejectsWith(run, 'CANCELLED', /sleep 300 was cancelled/);
    await rejectsWith(runCommand('true', [], { timeoutMs: 1000, signal: AbortSignal.abort() }), 'CANCELLED', /cancelled/);
  });

  it('hands input on stdin and passes only PATH, the locale and the given variables', async () => {
    process.env.WSD_TEST_SECRET = 'do-not-pass';
    try {
      const result = await runCommand('sh', ['-c', 'cat; echo "|$WSD_TEST_SECRET|$MINE|$LC_ALL"'], { timeoutMs: 10_000, input: 'from stdin', env: { MINE: 'given' } });
      assert.equal(result.stdout, 'from stdin||given|C\n');
    } finally {
      delete process.env.WSD_TEST_SECRET;
    }
  });

  it('refuses more stdout than allowed instead of returning it cut', async () => {
    await rejectsWith(runCommand('head', ['-c', '100000', '/dev/zero'], { timeoutMs: 10_000, maxStdoutBytes: 1000 }), 'INTERNAL', /stdout exceeded 1000 bytes/);
  });
});
