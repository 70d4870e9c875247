import { statfsSync } from 'node:fs';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * A fresh registry per daemon (never prom-client's global one, so two kernels in one test process do not clash),
 * with Node's process metrics and `wsd_build_info`.
 */
export function createMetricsRegistry(build: { version: string }): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const info = new Gauge({
    name: 'wsd_build_info',
    help: 'Always 1; labels say which wsd and Node.js are running',
    labelNames: ['version', 'node_version'],
    registers: [registry],
  });
  info.set({ version: build.version, node_version: process.versions.node }, 1);
  return registry;
}

/** Free and total bytes of the working area's filesystem, read at each scrape (one statfs). */
export function registerDiskMetrics(registry: Registry, workingArea: string): void {
  const read = () => {
    try {
      return statfsSync(workingArea);
    } catch {
      return undefined; // the working-area health check reports why
    }
  };
  new Gauge({
    name: 'wsd_working_area_free_bytes',
    help: 'Bytes available to workspaces on the working area filesystem',
    registers: [registry],
    collect() {
      const fs = read();
      if (fs) this.set(fs.bavail * fs.bsize);
    },
  });
  new Gauge({
    name: 'wsd_working_area_size_bytes',
    help: 'Size of the working area filesystem',
    registers: [registry],
    collect() {
      const fs = read();
      if (fs) this.set(fs.blocks * fs.bsize);
    },
  });
}
