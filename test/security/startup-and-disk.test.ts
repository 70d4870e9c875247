import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { extractArchive } from '../../core/content/archive.js';
import { runWsd } from '../kit/daemon-process.js';
import { tempDir } from '../kit/temp-dir.js';
import { createReadStream } from 'node:fs';

describe('security: start-up and a full disk (#11)', () => {
  it('#11 a data folder below /proc fails the start with a clear message instead of hanging', async () => {
    const dir = tempDir('wsd-sec-proc-');
    const config = path.join(dir, 'wsd.yaml');
    writeFileSync(config, 'dataDir: /proc/1/nonexistent\nhttp:\n  address: 127.0.0.1:0\napi:\n  address: 127.0.0.1:0\n');
    const started = Date.now();
    const result = await runWsd(['run', '--config', config]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /cannot create the working area \/proc\/1\/nonexistent/);
    assert.ok(Date.now() - started < 30_000, 'no hang');
  });

  it('#11 a full disk during a restore is RESOURCE_EXHAUSTED, not DATA_LOSS', async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root to mount a small tmpfs');
      return;
    }
    const dir = tempDir('wsd-sec-enospc-');
    const source = path.join(dir, 'source');
    mkdirSync(source);
    writeFileSync(path.join(source, 'big.bin'), Buffer.alloc(8 * 1024 * 1024, 1));
    const archive = path.join(dir, 'a.tar.zst');
    execFileSync('sh', ['-c', 'tar --create --file=- --format=posix --directory "$1" . | zstd -q -c > "$2"', 'sh', source, archive]);
    const small = path.join(dir, 'small');
    mkdirSync(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', small]);
    try {
      await assert.rejects(extractArchive(createReadStream(archive), small), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'RESOURCE_EXHAUSTED', error.message);
        return true;
      });
    } finally {
      execFileSync('umount', [small]);
    }
  });
});
