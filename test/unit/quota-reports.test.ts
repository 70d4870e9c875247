/**
 * What the xfs and lvm quota strategies read from xfs_quota and lvm, parsed on the host (the strategies themselves
 * run against real XFS and LVM in the QEMU guest: test/kernel/), and the xfs strategy's refusal of a working area
 * that is not XFS, which this host shows for real.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../core/observability/logger.js';
import { parseReport } from '../../plugins/quota/lvm/lvm-commands.js';
import { parseProjectReport } from '../../plugins/quota/xfs/xfs-project-quota.js';
import { XfsQuotaStrategy } from '../../plugins/quota/xfs/xfs-quota-strategy.js';
import { tempDir } from '../kit/temp-dir.js';

describe('quota reports', () => {
  it('reads xfs_quota project reports in bytes and leaves out projects with neither usage nor limits', () => {
    const report = [
      '#0                   0          0          0     00 [--------]',
      '#1001             3072       8192      10240     00 [--------]',
      '#1002            20480      16384      32768     00  [7 days]',
      '#1003                0          0          0     00 [--------]',
      '',
    ].join('\n');
    assert.deepEqual([...parseProjectReport(report)], [
      [1001, { usedBytes: 3072 * 1024, softBytes: 8192 * 1024, hardBytes: 10240 * 1024 }],
      [1002, { usedBytes: 20480 * 1024, softBytes: 16384 * 1024, hardBytes: 32768 * 1024 }],
    ]);
    assert.deepEqual([...parseProjectReport('xfs_quota: cannot setup path for mount /x: No such device or address\n')], []);
  });

  it('reads lvm JSON reports, and fails clearly on anything else', () => {
    const lvs = `  {
      "report": [
          {
              "lv": [
                  {"lv_name":"pool", "segtype":"thin-pool", "lv_when_full":"error"},
                  {"lv_name":"wsd-0a1b2c", "segtype":"thin", "lv_tags":"wsd,wsd-workspace=ws-1"}
              ]
          }
      ]
  }`;
    assert.deepEqual(parseReport(lvs, 'lv').map((row) => row.lv_name), ['pool', 'wsd-0a1b2c']);
    assert.deepEqual(parseReport(lvs, 'vg'), []);
    assert.throws(() => parseReport('  Volume group "x" not found', 'vg'), /cannot read the LVM report/);
  });

  it('the xfs strategy says why it cannot work on a working area that is not XFS', async () => {
    const strategy = new XfsQuotaStrategy({ workingArea: `${tempDir('wsd-xfs-host-')}/workspaces`, firstProjectId: 1000, lastProjectId: 1999, softHeadroomPercent: 100, commandTimeoutMs: 10_000, healthIntervalMs: 0, log: silentLogger });
    // This host's temp folder is not XFS with project quota (its kernel has no XFS quota at all).
    assert.match((await strategy.unusableReason()) ?? '', /is on \S+ .*not XFS: quota strategy "xfs" needs an XFS file system mounted with prjquota|has no project quota: mount it with -o prjquota/);
  });
});
