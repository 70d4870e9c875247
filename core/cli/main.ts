import { Command } from 'commander';
import { wsdVersion } from '../version.js';
import { registerClientCommand } from './client-command.js';
import { registerConfigCommands } from './config-command.js';
import { registerPluginsCommand } from './plugins-command.js';
import { registerRunCommand } from './run-command.js';

// grpc-js sets the TLS server name to the address even when it is an IP (DEP0123): noise for CLI users, who cannot
// act on it. Other warnings are printed as Node would.
process.removeAllListeners('warning');
process.on('warning', (warning: Error & { code?: string }) => {
  if (warning.code !== 'DEP0123') process.stderr.write(`${warning.name}: ${warning.message}\n`);
});

const program = new Command('wsd')
  .description('wsd — the workspace daemon: initializes, backs up, snapshots and quota-limits workspaces on a node')
  .version(wsdVersion)
  .showHelpAfterError()
  .enablePositionalOptions()
  // Every usage error commander detects (unknown option or command, missing option or argument, an invalid value,
  // a bare command that needs a subcommand) exits 2, as the README promises; help and --version exit 0. Set before
  // the subcommands are added: they inherit it.
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));

registerRunCommand(program);
registerConfigCommands(program);
registerPluginsCommand(program);
registerClientCommand(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`wsd: ${(error as Error)?.message ?? String(error)}\n`);
  process.exit(1);
});
