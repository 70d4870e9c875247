import type { Command } from 'commander';
import { pluginName } from '../kernel/plugin.js';
import { exitOnConfigError, loadCliConfig } from './load-cli-config.js';
import { table } from './table.js';

export function registerPluginsCommand(program: Command): void {
  program
    .command('plugins')
    .description('list built-in plugins, and with --config the plugins that config loads, in start order')
    .option('-c, --config <file>', 'also show what this config would load (and load its plugin modules)')
    .option('--json', 'print JSON')
    .action(async (options: { config?: string; json?: boolean }) => {
      const config = options.config ? await loadCliConfig(options.config).catch(exitOnConfigError) : undefined;
      const available = (config ? config.catalog.all() : [...(await import('../../plugins/builtins.js')).builtinPlugins]).map(({ plugin, source }) => ({
        kind: plugin.kind,
        id: plugin.id,
        source,
        description: plugin.description ?? '',
      }));
      const enabled = config?.plan.map((p) => ({
        name: pluginName(p.plugin),
        source: p.source,
        configPath: p.configPath,
        dependsOn: p.dependsOn,
      }));
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ available, ...(config ? { config: config.source, enabled } : {}) }, null, 2)}\n`);
        return;
      }
      const rows = available.map((p) => [p.kind, p.id, p.source, p.description]);
      process.stdout.write(`${table([['KIND', 'ID', 'SOURCE', 'DESCRIPTION'], ...rows])}\n`);
      if (config && enabled) {
        process.stdout.write(`\n${config.source} loads, in start order:\n`);
        const planRows = enabled.map((p, i) => [`${i + 1}.`, p.name, p.source, p.dependsOn.length ? `after ${p.dependsOn.join(', ')}` : '']);
        process.stdout.write(`${table(planRows)}\n`);
      }
    });
}
