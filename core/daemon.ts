import type { WsdConfig } from './config/load-config.js';
import { healthCheckToken } from './health/health-check.js';
import { HealthMonitor } from './health/health-monitor.js';
import { ProbeServer } from './api/http-server.js';
import { Kernel } from './kernel/kernel.js';
import type { Logger } from './observability/logger.js';
import { createMetricsRegistry } from './observability/metrics.js';
import { wsdVersion } from './version.js';

export interface RunningDaemon {
  kernel: Kernel;
  /** The bound `host:port` of the probe/metrics endpoint. */
  httpAddress: string;
  /** Stops serving, then stops the plugins in reverse order. Idempotent. */
  stop(): Promise<void>;
}

/** Starts the kernel and the probe/metrics endpoint for a validated config. */
export async function startDaemon(config: WsdConfig, log: Logger): Promise<RunningDaemon> {
  const metrics = createMetricsRegistry({ version: wsdVersion });
  const kernel = new Kernel({ config, logger: log, metrics });
  await kernel.start();

  const monitor = new HealthMonitor(kernel.get(healthCheckToken), { metrics });
  const probes = new ProbeServer({ metrics, running: () => kernel.running, health: () => monitor.report() });
  let httpAddress: string;
  try {
    httpAddress = await probes.listen(config.root.http.address);
  } catch (error) {
    await kernel.stop();
    throw error;
  }
  log.info('http listening', { address: httpAddress });

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await kernel.stop(); // readiness turns false first, so probes see the node leaving
      await probes.close();
    })());
  return { kernel, httpAddress, stop };
}
