import { builtinPlugins } from '../../plugins/builtins.js';
import { ConfigError } from '../config/config-error.js';
import { loadConfig, type WsdConfig } from '../config/load-config.js';
import { coreTokens } from '../kernel/core-tokens.js';

/** Loads the config the way every command does: `--config`, else the search places, else the embedded default. */
export function loadCliConfig(configPath: string | undefined): Promise<WsdConfig> {
  return loadConfig({ ...(configPath ? { configPath } : {}), builtins: builtinPlugins, coreTokens });
}

/** Prints a config problem for a person and exits 2 (bad input); anything else is rethrown. */
export function exitOnConfigError(error: unknown): never {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  throw error;
}
