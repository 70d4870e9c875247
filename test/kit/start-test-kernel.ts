import 'reflect-metadata';
import { builtinPlugins } from '../../plugins/builtins.js';
import { validateConfig, type WsdConfig } from '../../core/config/load-config.js';
import { coreTokens } from '../../core/kernel/core-tokens.js';
import { Kernel } from '../../core/kernel/kernel.js';
import type { AnyPlugin } from '../../core/kernel/plugin.js';
import type { Token } from '../../core/kernel/token.js';
import { createLogger, silentLogger, type Logger } from '../../core/observability/logger.js';
import { tempDir } from './temp-dir.js';

export interface TestKernelOptions {
  /** Plugins to offer besides the built-ins (a plugin under test, fakes). */
  plugins?: readonly AnyPlugin[];
  /** Raw config, as it would be in wsd.yaml. `dataDir` defaults to a fresh temp folder. */
  config?: Record<string, unknown>;
  /** Replace what a token resolves to (e.g. a fake storage backend); plugins of that kind are not created. */
  overrides?: ReadonlyArray<{ token: Token<any>; value: unknown }>;
  /** Log to stdout (default: silent unless WSD_TEST_LOG=1). */
  logger?: Logger;
  /** Do not call `start()` (to test start failures). */
  noStart?: boolean;
}

export interface TestKernel {
  kernel: Kernel;
  config: WsdConfig;
  dataDir: string;
  stop(): Promise<void>;
}

/**
 * Boots a real kernel with the built-ins, the given plugins and config, in a temp data folder — the same code
 * path as `wsd run`, minus the HTTP endpoint. For plugin authors' tests as much as for wsd's own.
 */
export async function startTestKernel(options: TestKernelOptions = {}): Promise<TestKernel> {
  const dataDir = (options.config?.dataDir as string | undefined) ?? tempDir('wsd-kernel-');
  const config = await validateConfig(
    { ...options.config, dataDir },
    {
      builtins: [...builtinPlugins, ...(options.plugins ?? []).map((plugin) => ({ plugin, source: 'test' }))],
      coreTokens,
      source: 'test config',
      baseDir: dataDir,
      env: process.env,
    },
  );
  const logger = options.logger ?? (process.env.WSD_TEST_LOG ? createLogger({ level: 'debug' }) : silentLogger);
  const kernel = new Kernel({ config, logger, overrides: options.overrides ?? [] });
  if (!options.noStart) await kernel.start();
  return { kernel, config, dataDir, stop: () => kernel.stop() };
}
