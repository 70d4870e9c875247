import 'reflect-metadata';
import { Command } from 'commander';
import { wsdVersion } from '../version.js';
import { registerClientCommand } from './client-command.js';
import { registerConfigCommands } from './config-command.js';
import { registerPluginsCommand } from './plugins-command.js';
import { registerRunCommand } from './run-command.js';

const program = new Command('wsd')
  .description('wsd — the workspace daemon: initializes, backs up, snapshots and quota-limits workspaces on a node')
  .version(wsdVersion)
  .showHelpAfterError()
  .enablePositionalOptions();

registerRunCommand(program);
registerConfigCommands(program);
registerPluginsCommand(program);
registerClientCommand(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`wsd: ${(error as Error)?.message ?? String(error)}\n`);
  process.exit(1);
});
