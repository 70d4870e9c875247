/**
 * The xfs quota strategy on a real kernel: boots the QEMU test guest once and runs xfs-quota.guest.js in it (the quota
 * conformance suite and the xfs cases, on an XFS mounted with prjquota), reporting each guest case here. This host's
 * kernel has no XFS quota; the guest's has. Fails (never skips) without QEMU or the prepared guest.
 */
import { describe, it } from 'node:test';
import { runGuestTestFile } from '../kit/guest-tests.js';

const GiB = 1024 * 1024 * 1024;

describe('quota/xfs in a guest kernel', () => {
  it('passes the quota conformance suite and the xfs cases on XFS with project quotas', { timeout: 15 * 60_000 }, async (t) => {
    await runGuestTestFile(t, {
      file: new URL('./xfs-quota.guest.js', import.meta.url),
      // vda: XFS with prjquota; vdb: XFS without (mkfs.xfs wants at least 300 MB).
      disks: [{ sizeBytes: 2 * GiB }, { sizeBytes: GiB / 2 }],
      timeoutMs: 14 * 60_000,
    });
  });
});
