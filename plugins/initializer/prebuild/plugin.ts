import { z } from 'zod';
import { checkGitRemotePolicy, gitRemotePolicyFields, gitRemotePolicyOf } from '../git/git-policy-schema.js';
import { PrebuildContentInitializer } from './prebuild-content-initializer.js';
import { definePlugin } from '../../../core/plugin-api.js';

export const prebuildInitializerPlugin = definePlugin({
  kind: 'initializer',
  id: 'prebuild',
  description: 'Restores a prebuild snapshot and brings its git checkouts to their targets',
  configSchema: z
    .strictObject({
      ...gitRemotePolicyFields,
      allowOtherOwners: z
        .boolean()
        .default(true)
        .describe("Restore prebuild snapshots taken under another owner (on: prebuilds are shared by a project's users). Off: only the workspace owner's own."),
    })
    .check(checkGitRemotePolicy),
  create: ({ config }) =>
    new PrebuildContentInitializer({
      policy: gitRemotePolicyOf(config),
      allowOtherOwners: config.allowOtherOwners,
    }),
});
