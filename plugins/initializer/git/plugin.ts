import { z } from 'zod';
import { GitContentInitializer } from './git-content-initializer.js';
import { checkGitRemotePolicy, gitRemotePolicyFields, gitRemotePolicyOf } from './git-policy-schema.js';
import { definePlugin, durationSchema } from '../../../core/plugin-api.js';

export const gitInitializerPlugin = definePlugin({
  kind: 'initializer',
  id: 'git',
  description: 'Clones a git repository (all target modes, basic and one-time-secret auth, submodules, upstream)',
  configSchema: z
    .strictObject({
      retryTimeout: durationSchema.prefault('5m').describe('How long transient clone and fetch failures are retried (access denied is not).'),
      initialRetryDelay: durationSchema.prefault('1s').describe('First retry delay; doubles each retry.'),
      ...gitRemotePolicyFields,
      allowFileSubmodules: z
        .boolean()
        .default(false)
        .describe("Let submodules use local paths or file:// URLs (git's default forbids it: a repository could pull other workspaces' files)."),
    })
    .check(checkGitRemotePolicy),
  create: ({ config }) =>
    new GitContentInitializer({
      retryTimeoutMs: config.retryTimeout,
      initialRetryDelayMs: config.initialRetryDelay,
      allowFileSubmodules: config.allowFileSubmodules,
      policy: gitRemotePolicyOf(config),
    }),
});
