import { format } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from './logger.js';

/**
 * Routes what libraries and Node itself would print on their own (grpc-js's logger on stderr, process warnings) into
 * the daemon's JSON log, so every line wsd writes is one JSON object that log shippers can parse.
 */
export function routeForeignLogs(log: Logger): void {
  // grpc-js's own lines at debug, its severity kept: what it reports as an error (a bind failure, a dropped
  // connection) reaches the caller or the log as wsd's own error already, and would otherwise be said twice.
  const grpcLog = log.child({ component: 'grpc-js' });
  const write = (severity: string) => (...args: unknown[]) => grpcLog.debug(format(...args), { severity });
  grpc.setLogger({ error: write('error'), info: write('info'), debug: write('debug') } as Partial<Console> as Console);
  // Node's default warning printer writes free text to stderr: replace it with a log line.
  process.removeAllListeners('warning');
  process.on('warning', (warning) => log.warn('node warning', { name: warning.name, warning: warning.message, ...(('code' in warning) ? { code: (warning as { code?: string }).code } : {}) }));
}
