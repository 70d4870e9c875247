// The public API for programs that embed wsd: everything a plugin gets (core/plugin-api.ts, the one list of it),
// plus the kernel and the config loader.
export * from './plugin-api.js';
export { type TokenType, type Resolved } from './kernel/token.js';
export { Kernel, type PluginStatus, type KernelOptions } from './kernel/kernel.js';
export { loadConfig, validateConfig, type WsdConfig } from './config/load-config.js';
export { ConfigError, type ConfigIssue } from './config/config-error.js';
