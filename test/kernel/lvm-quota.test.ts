/**
 * The lvm quota strategy on a real kernel: boots the QEMU test guest once and runs lvm-quota.guest.js in it (the quota
 * conformance suite and the lvm cases, on LVM thin volumes), reporting each guest case here. This host's kernel has
 * no device-mapper; the guest's has. Fails (never skips) without QEMU or the prepared guest.
 */
import { describe, it } from 'node:test';
import { runGuestTestFile } from '../kit/guest-tests.js';

const GiB = 1024 * 1024 * 1024;

describe('quota/lvm in a guest kernel', () => {
  it('passes the quota conformance suite and the lvm cases on LVM thin volumes', { timeout: 20 * 60_000 }, async (t) => {
    await runGuestTestFile(t, {
      file: new URL('./lvm-quota.guest.js', import.meta.url),
      // vda: the volume group (a 1200 MiB thin pool and two small volumes for the start checks).
      disks: [{ sizeBytes: 2 * GiB }],
      timeoutMs: 19 * 60_000,
    });
  });
});
