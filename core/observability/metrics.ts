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
