import type { Command } from 'commander';
import type { RunningDaemon } from '../daemon.js';
import { routeForeignLogs } from '../observability/foreign-logs.js';
import { createLogger } from '../observability/logger.js';
import { killAllChildrenNow } from '../process/child-processes.js';
import { wsdVersion } from '../version.js';
import { exitOnConfigError, loadCliConfig } from './load-cli-config.js';

/** How long a graceful stop may take before the process gives up and exits non-zero. */
export const stopTimeoutMs = 60_000;

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('run the daemon in the foreground until SIGTERM or SIGINT')
    .option('-c, --config <file>', 'config file (default: wsd.yaml etc. in the current folder, else the embedded default)')
    .action(async (options: { config?: string }) => {
      const config = await loadCliConfig(options.config).catch(exitOnConfigError);
      const log = createLogger({ level: config.root.log.level });
      routeForeignLogs(log);
      log.info('starting', { version: wsdVersion, config: config.source, workingArea: config.paths.workingArea });
      // Signal handlers go in before anything starts: a signal that arrives before a handler exists kills the
      // process on the spot (the default action), and one during start-up is a request to stop, not to die.
      // One signal stops gracefully. Terminals and `npm start` often deliver Ctrl-C twice (npm forwards the SIGINT
      // the process group already got): a second signal must not cut a backup's commit in half, so it only says
      // that wsd is stopping. A third is an operator who means it: exit at once.
      let daemon: RunningDaemon | undefined;
      let stopRequested: NodeJS.Signals | undefined;
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        signals++;
        if (signals === 1) {
          stopRequested = signal;
          if (daemon) shutdown(daemon, signal);
          else log.info('stop requested during start; stopping once started', { signal });
          return;
        }
        if (signals === 2) {
          log.warn('already stopping; final backups and commits are finishing (send the signal again to exit at once)', { signal });
          return;
        }
        log.error('forced exit before the stop finished', { signal });
        killAllChildrenNow(); // git, tar and zstd run in groups of their own: they must not outlive the daemon
        process.exit(signal === 'SIGINT' ? 130 : 143);
      };
      const shutdown = (running: RunningDaemon, signal: NodeJS.Signals) => {
        log.info('stopping', { signal });
        const timer = setTimeout(() => {
          log.error('stop timed out', { timeoutMs: stopTimeoutMs });
          killAllChildrenNow();
          process.exit(1);
        }, stopTimeoutMs);
        timer.unref();
        running.stop().then(
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
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);

      try {
        const { startDaemon } = await import('../daemon.js');
        daemon = await startDaemon(config, log);
      } catch (error) {
        // The event in the log (stdout, JSON like every line there), and the reason once for the person at the
        // terminal (stderr). grpc-js's own copy of a bind failure goes to the log at debug (routeForeignLogs).
        log.error('start failed', { error: error as Error });
        process.stderr.write(`${(error as Error).message}\n`);
        process.exit(1);
      }
      log.info('ready', { http: daemon.httpAddress, grpc: daemon.grpcAddress });
      if (stopRequested) shutdown(daemon, stopRequested);
    });
}
