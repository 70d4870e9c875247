import { Gauge, Histogram, type Registry } from 'prom-client';
import { reusedProbe } from '../health/reused-probe.js';
import type { WorkspaceState } from './workspace-record.js';

/** Sums over the workspaces on disk: the limits in force and, when the strategy measures it, their use. */
export interface QuotaTotals {
  limitBytes: number;
  usedBytes?: number;
}

/**
 * The workspace lifecycle's metrics: workspaces by state, quota limits and use, init and archive durations. Nothing
 * without a registry.
 */
export class WorkspaceMetrics {
  readonly initSeconds?: Histogram;
  readonly archiveSeconds?: Histogram;

  constructor(registry: Registry | undefined, states: () => WorkspaceState[], quotaTotals?: () => Promise<QuotaTotals>) {
    if (!registry) return;
    if (quotaTotals) {
      // One measurement per scrape for both gauges (a usage call may run a command per workspace).
      const totals = reusedProbe(1_000, quotaTotals);
      // Sums, not one series per workspace: workspaces come and go every few minutes, and a label per id would grow
      // the series without bound. Which workspace is full shows in describe and on the status page.
      new Gauge({
        name: 'wsd_quota_limit_bytes',
        help: 'Sum of the quota limits in force of the workspaces on disk (0 = none set)',
        registers: [registry],
        async collect() {
          this.set((await totals()).limitBytes);
        },
      });
      new Gauge({
        name: 'wsd_quota_used_bytes',
        help: 'Sum of what the quota strategy measures as used by the workspaces on disk (absent when it does not measure)',
        registers: [registry],
        async collect() {
          const { usedBytes } = await totals();
          if (usedBytes === undefined) this.reset();
          else this.set(usedBytes);
        },
      });
    }
    new Gauge({
      name: 'wsd_workspaces',
      help: 'Workspaces on this node by state',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const all = states();
        for (const state of ['initializing', 'ready', 'disposing', 'failed'] satisfies WorkspaceState[]) {
          this.set({ state }, all.filter((s) => s === state).length);
        }
      },
    });
    this.initSeconds = new Histogram({
      name: 'wsd_workspace_init_duration_seconds',
      help: 'Time to initialize a workspace, by initializer kind and outcome',
      labelNames: ['kind', 'outcome'],
      buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900],
      registers: [registry],
    });
    this.archiveSeconds = new Histogram({
      name: 'wsd_archive_duration_seconds',
      help: 'Time to store a backup or snapshot, by kind and outcome',
      labelNames: ['kind', 'outcome'],
      buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900],
      registers: [registry],
    });
  }
}
