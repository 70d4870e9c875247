import { ConfigError } from '../config/config-error.js';
import type { WsdConfig } from '../config/load-config.js';

/**
 * Loads the config the way every command does: `--config`, else the search places, else the embedded default.
 * The config machinery and the plugins load on first use, so `wsd client …` and `wsd --version` start fast.
 */
export async function loadCliConfig(configPath: string | undefined): Promise<WsdConfig> {
  const [{ builtinPlugins }, { loadConfig }, { coreTokens }] = await Promise.all([
    import('../../plugins/builtins.js'),
    import('../config/load-config.js'),
    import('../kernel/core-tokens.js'),
  ]);
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
