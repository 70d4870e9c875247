import type { Registry } from 'prom-client';
import type { DiskGuard } from '../health/disk-guard.js';
import type { Logger } from '../observability/logger.js';
import { createToken } from './token.js';

/** Services the kernel provides itself; any plugin may `require` them. */
export const loggerToken = createToken<Logger>('wsd.logger.v1');
export const metricsRegistryToken = createToken<Registry>('wsd.metrics.v1');
export const pathsToken = createToken<DaemonPaths>('wsd.paths.v1');
/** The node disk guard (`workspaces.minFree`): what the `disk-space` health check takes its threshold from. */
export const diskGuardToken = createToken<DiskGuard>('wsd.disk-guard.v1');

export interface DaemonPaths {
  dataDir: string;
  /** Holds the `<id>/` workspace folders (nothing else: state lives in `stateDir`). */
  workingArea: string;
  /** Holds `<id>.json` workspace state files, apart from content. */
  stateDir: string;
}

export const coreTokens = [loggerToken, metricsRegistryToken, pathsToken, diskGuardToken] as const;
