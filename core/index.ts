// The public API for plugin authors and programs that embed wsd.
export { WsdError, wsdErrorCodes, isWsdError, toWsdError, type WsdErrorCode } from './errors.js';
export { createToken, type Token, type TokenType, type Resolved } from './kernel/token.js';
export {
  definePlugin,
  skip,
  isSkip,
  pluginApiVersion,
  pluginKinds,
  type PluginDefinition,
  type PluginContext,
  type PluginKind,
  type PluginLifecycle,
  type ConfigSchema,
  type Skip,
} from './kernel/plugin.js';
export { loggerToken, metricsRegistryToken, pathsToken, type DaemonPaths } from './kernel/core-tokens.js';
export { Kernel, type PluginStatus, type KernelOptions } from './kernel/kernel.js';
export * from './storage/storage-backend.js';
export * from './quota/quota-strategy.js';
export * from './initializer/content-initializer.js';
export * from './health/health-check.js';
export type { Logger, LogFields } from './observability/logger.js';
export { loadConfig, validateConfig, type WsdConfig } from './config/load-config.js';
export { ConfigError, type ConfigIssue } from './config/config-error.js';
