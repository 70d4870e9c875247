import { format } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from './logger.js';

/**
 * Routes what libraries and Node itself would print on their own (grpc-js's logger on stderr, process warnings) into
 * the daemon's JSON log, so every line wsd writes is one JSON object that log shippers can parse.
 */
export function routeForeignLogs(log: Logger): void {
  const grpcLog = log.child({ component: 'grpc-js' });
  grpc.setLogger({
    error: (...args: unknown[]) => grpcLog.warn(format(...args)),
    info: (...args: unknown[]) => grpcLog.info(format(...args)),
    debug: (...args: unknown[]) => grpcLog.debug(format(...args)),
  } as Partial<Console> as Console);
  // grpc-js's own verbosity still applies (GRPC_VERBOSITY); by default it reports errors only.
  // Node's default warning printer writes free text to stderr: replace it with a log line.
  process.removeAllListeners('warning');
  process.on('warning', (warning) => log.warn('node warning', { name: warning.name, warning: warning.message, ...(('code' in warning) ? { code: (warning as { code?: string }).code } : {}) }));
}
