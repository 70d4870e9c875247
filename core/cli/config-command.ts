import type { Command } from 'commander';
import { pluginName } from '../kernel/plugin.js';
import { exitOnConfigError, loadCliConfig } from './load-cli-config.js';

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('check or show configuration');

  config
    .command('validate')
    .description('check a config (schema, plugin sections, plugin modules, dependencies) without starting anything')
    .option('-c, --config <file>', 'config file (default: the search places, else the embedded default)')
    .action(async (options: { config?: string }) => {
      const loaded = await loadCliConfig(options.config).catch(exitOnConfigError);
      process.stdout.write(`${loaded.source}: valid; plugins in start order: ${loaded.plan.map((p) => pluginName(p.plugin)).join(', ')}\n`);
    });

  config
    .command('print-defaults')
    .description('print the complete default config, every field with its description')
    .action(async () => {
      const [{ builtinPlugins }, { renderDefaults }, { PluginCatalog }] = await Promise.all([
        import('../../plugins/builtins.js'),
        import('../config/print-defaults.js'),
        import('../kernel/registry.js'),
      ]);
      process.stdout.write(renderDefaults(new PluginCatalog(builtinPlugins)));
    });
}
