import type { Registry } from 'prom-client';
import type { Logger } from '../observability/logger.js';
import { createToken } from './token.js';

/** Services the kernel provides itself; any plugin may `require` them. */
export const loggerToken = createToken<Logger>('wsd.logger.v1');
export const metricsRegistryToken = createToken<Registry>('wsd.metrics.v1');
export const pathsToken = createToken<DaemonPaths>('wsd.paths.v1');

export interface DaemonPaths {
  dataDir: string;
  /** Holds the `<id>/` workspace folders (nothing else: state lives in `stateDir`). */
  workingArea: string;
  /** Holds `<id>.json` workspace state files, apart from content. */
  stateDir: string;
}

export const coreTokens = [loggerToken, metricsRegistryToken, pathsToken] as const;
