import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { gitFailure, runGit } from '../../core/content/git.js';
import { tempDir } from '../kit/temp-dir.js';

describe('gitFailure', () => {
  it('does not take a vanished local folder for a network failure (no retry, nothing about the remote)', async () => {
    const dir = tempDir('wsd-git-failure-');
    const gone = path.join(dir, 'gone');
    mkdirSync(gone);
    rmSync(gone, { recursive: true });
    const result = await runGit(['-C', gone, 'status'], { cwd: dir });
    assert.notEqual(result.code, 0);
    const failure = gitFailure('status', result);
    assert.equal(failure.code, 'FAILED_PRECONDITION');
    assert.match(failure.message, /local file system/);
    assert.equal(failure.field, undefined, 'no request field is blamed');
  });

  it('does not retry a clone whose target cannot be created', async () => {
    const dir = tempDir('wsd-git-failure-');
    writeFileSync(path.join(dir, 'a-file'), 'x');
    const origin = path.join(dir, 'origin');
    mkdirSync(origin);
    assert.equal((await runGit(['init', '-q', origin], { cwd: dir })).code, 0);
    const result = await runGit(['clone', '-q', '--', origin, path.join(dir, 'a-file', 'below', 'checkout')], { cwd: dir });
    assert.notEqual(result.code, 0);
    assert.notEqual(gitFailure('clone', result).code, 'UNAVAILABLE', result.stderr);
  });

  it('still treats a refused connection as transient', () => {
    const failure = gitFailure('clone', { code: 128, stdout: '', stderr: "fatal: unable to access 'https://127.0.0.1:1/r/': Failed to connect to 127.0.0.1 port 1: Connection refused\n" });
    assert.equal(failure.code, 'UNAVAILABLE');
  });
});
