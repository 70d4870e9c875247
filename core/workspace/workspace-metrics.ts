import { Gauge, Histogram, type Registry } from 'prom-client';
import type { WorkspaceState } from './workspace-record.js';

/** The workspace lifecycle's metrics: workspaces by state, init and archive durations. Nothing without a registry. */
export class WorkspaceMetrics {
  readonly initSeconds?: Histogram;
  readonly archiveSeconds?: Histogram;

  constructor(registry: Registry | undefined, states: () => WorkspaceState[]) {
    if (!registry) return;
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
