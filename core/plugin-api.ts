/**
 * The plugin SDK: everything a wsd plugin — built-in or third-party — may import from wsd, in one entry point
 * (`wsd/plugin-api`). Built-in plugins import nothing else of core (a test keeps it so), so a third-party plugin gets
 * exactly what the built-ins get: the four contracts with their tokens, `definePlugin`, branded errors, config
 * schemas, and the helpers that make a plugin safe with untrusted input (paths resolved on disk, retries, tracked
 * child processes, network address policy, digests).
 *
 * A plugin may bundle its own copy of this module: errors are recognised by brand (`Symbol.for`), tokens by id.
 */

// Declaring a plugin.
export {
  definePlugin,
  skip,
  isSkip,
  pluginApiVersion,
  pluginKinds,
  supportedContracts,
  type PluginDefinition,
  type PluginContext,
  type PluginKind,
  type PluginLifecycle,
  type ConfigSchema,
  type Skip,
} from './kernel/plugin.js';
export { createToken, type Token } from './kernel/token.js';
export { loggerToken, metricsRegistryToken, pathsToken, diskGuardToken, type DaemonPaths } from './kernel/core-tokens.js';
export { type DiskGuard, type DiskSample } from './health/disk-guard.js';
export { formatBytes } from './config/units.js';

// The four contracts.
export * from './storage/storage-backend.js';
export * from './quota/quota-strategy.js';
export * from './initializer/content-initializer.js';
export * from './initializer/archive-service.js';
export * from './initializer/specs.js';
export * from './health/health-check.js';

// Errors: a closed set of codes, recognised by brand.
export { WsdError, wsdErrorCodes, isWsdError, isTransient, toWsdError, isAbortError, errnoCode, type WsdErrorCode, type WsdErrorOptions } from './errors.js';

// Config: zod (a Standard Schema) as wsd uses it, and wsd's own field types. Plugins need no zod dependency.
export { z } from 'zod';
export { durationSchema } from './config/root-schema.js';
export { sizeSchema } from './config/size-schema.js';
export { cidrSchema, networkPolicyFields } from './config/network-schema.js';

// Helpers for untrusted input and robust I/O.
export { insideFolder, resolveInside, realFolderInside, makeRealFolders, createExclusive } from './content/inside-folder.js';
export { makeFolders } from './fs/make-folders.js';
export { mountTablePath, mountsAtOrBelow, readMountTable, type MountEntry } from './fs/mount-table.js';
export { retry, transientHttpStatus, type RetryOptions } from './retry.js';
export { DigestStream } from './content/digest-stream.js';
export { runGit, git, gitFailure, checkoutUser, type GitOptions, type GitResult } from './content/git.js';
export { filteredConfig } from './content/git-config.js';
export { parseSnapshotName } from './content/backup-store.js';
export { spawnTracked } from './process/child-processes.js';
export { runCommand, stderrKeptBytes, type CommandFailure, type CommandResult, type RunCommandOptions } from './process/run-command.js';
export { AddressPolicy, defaultDeniedNetworks, guardedLookup, parseIp, redactUrl } from './net/address-policy.js';
export { guardedGet } from './net/guarded-get.js';
export { scrubSecrets, redactValue } from './observability/redact.js';
export type { Logger, LogFields } from './observability/logger.js';
/** Workspace ids as core validates them (strategies that name files, volumes or tags after an id use the same rule). */
export { assertValidWorkspaceId, isValidWorkspaceId } from './workspace/workspace-record.js';
export { reusedProbe } from './health/reused-probe.js';
