import type { Command } from 'commander';
import { createLogger } from '../observability/logger.js';
import { wsdVersion } from '../version.js';
import { exitOnConfigError, loadCliConfig } from './load-cli-config.js';

/** How long a graceful stop may take before the process gives up and exits non-zero. */
const stopTimeoutMs = 60_000;

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('run the daemon in the foreground until SIGTERM or SIGINT')
    .option('-c, --config <file>', 'config file (default: wsd.yaml etc. in the current folder, else the embedded default)')
    .action(async (options: { config?: string }) => {
      const config = await loadCliConfig(options.config).catch(exitOnConfigError);
      const log = createLogger({ level: config.root.log.level });
      log.info('starting', { version: wsdVersion, config: config.source, workingArea: config.paths.workingArea });
      let daemon;
      try {
        const { startDaemon } = await import('../daemon.js');
        daemon = await startDaemon(config, log);
      } catch (error) {
        // The event in the log (stdout, JSON like every line there), and the reason once for the person at the
        // terminal (stderr). grpc-js's own copy of a bind failure goes to the log at debug (routeGrpcLogs).
        log.error('start failed', { error: error as Error });
        process.stderr.write(`${(error as Error).message}\n`);
        process.exit(1);
      }
      log.info('ready', { http: daemon.httpAddress, grpc: daemon.grpcAddress });

      const shutdown = (signal: NodeJS.Signals) => {
        log.info('stopping', { signal });
        const timer = setTimeout(() => {
          log.error('stop timed out', { timeoutMs: stopTimeoutMs });
          process.exit(1);
        }, stopTimeoutMs);
        timer.unref();
        daemon.stop().then(
          () => {
            log.info('stopped');
            process.exit(0);
          },
          (error: unknown) => {
            log.error('stop failed', { error: error as Error });
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', shutdown);
      process.once('SIGINT', shutdown);
    });
}
