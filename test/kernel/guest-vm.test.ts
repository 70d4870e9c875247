/**
 * The QEMU test harness itself (test/kit/guest-vm.ts): a command runs in the guest kernel with the host's tools and
 * the project at their paths, its status, output and result files come back, and QEMU never outlives a run.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { packageRoot } from '../../core/config/package-root.js';
import { guestKernel, runInGuest } from '../kit/guest-vm.js';
import { until } from '../kit/polling.js';

/** QEMU processes this test process started and that still run. */
function ownQemus(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return fields[1] === String(process.pid) && stat.includes('(qemu-system-x86');
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('QEMU guest harness', () => {
  it('runs a command in the guest kernel and returns its exit status, output, result files and disks', { timeout: 5 * 60_000 }, async (t) => {
    const kernel = guestKernel();
    const script = [
      'uname -r',
      'grep -c . /proc/self/mountinfo >/dev/null',
      'echo "disk $(blockdev --getsize64 /dev/vda)"',
      'node -e "console.log(\'node in guest\', process.version)"',
      'echo from-guest >"$WSD_GUEST_RESULTS/out.txt"',
      'echo "cwd $(pwd)"',
      'touch /usr/wsd-guest-write-probe && echo "root writable"',
      'exit 3',
    ].join('\n');
    const result = await runInGuest({ command: ['/bin/sh', '-c', script], disks: [{ sizeBytes: 64 * 1024 * 1024 }], timeoutMs: 4 * 60_000 });
    t.diagnostic(`guest run: ${(result.durationMs / 1000).toFixed(1)} s, command started after ${(result.bootMs / 1000).toFixed(1)} s`);
    assert.equal(result.exitCode, 3);
    assert.match(result.output, new RegExp(`^${kernel.release.replaceAll('.', '\\.')}\\r?$`, 'm'), 'the guest runs the prepared kernel');
    assert.match(result.output, /^disk 67108864\r?$/m, 'the disk is attached with its size');
    assert.match(result.output, new RegExp(`node in guest ${process.version.replaceAll('.', '\\.')}`), "the host's node runs in the guest");
    assert.match(result.output, /root writable/, 'the guest root is writable (an overlay)');
    assert.ok(result.output.includes(`cwd ${packageRoot()}`), 'the command runs in the repository root by default');
    assert.equal(readFileSync(path.join(result.resultsDir, 'out.txt'), 'utf8'), 'from-guest\n');
    assert.equal(ownQemus().length, 0, 'QEMU has exited');
    assert.throws(() => readFileSync('/usr/wsd-guest-write-probe'), 'what the guest wrote outside its results stays in the guest');
  });

  it('kills QEMU when the timeout passes and says so', { timeout: 2 * 60_000 }, async () => {
    await assert.rejects(runInGuest({ command: ['/bin/sh', '-c', 'sleep 600'], timeoutMs: 1500 }), /did not finish within 1\.5 s/);
    await until(() => ownQemus().length === 0, 'QEMU to be gone after the timeout', 10_000);
  });
});
