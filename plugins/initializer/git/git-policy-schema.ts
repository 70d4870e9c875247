import { z } from 'zod';
import { gitProtocols, isForbiddenConfigKey, type GitRemotePolicy } from './git-policy.js';
import { networkPolicyFields } from '../../../core/plugin-api.js';

/** Config fields of a {@link GitRemotePolicy}, shared by the git and prebuild plugins. */
export const gitRemotePolicyFields = {
  ...networkPolicyFields('git remotes (and submodules)'),
  protocols: z
    .array(z.enum(gitProtocols))
    .default(['https', 'ssh'])
    .describe('Transports a remote (and its submodules) may use. `file` also needs localRoots. Transport helpers (`ext::`) are never allowed.'),
  localRoots: z
    .array(z.string().min(1).refine((p) => p.startsWith('/'), 'must be an absolute path'))
    .default([])
    .describe('Folders whose repositories may be cloned by local path or file:// URL (checked after resolving symlinks). Empty: none.'),
  extraConfigKeys: z
    .array(z.string().refine((k) => !isForbiddenConfigKey(k), 'this git setting can run commands, load files or redirect fetches; it is never allowed'))
    .default([])
    .describe("custom_config keys allowed beyond wsd's built-in list of safe git settings."),
};

/** `localRoots` is useless without the `file` transport: say so instead of silently refusing every local clone. */
export function checkGitRemotePolicy(ctx: { value: GitRemotePolicy; issues: unknown[] }): void {
  if (ctx.value.localRoots.length > 0 && !ctx.value.protocols.includes('file')) {
    ctx.issues.push({ code: 'custom', input: ctx.value, path: ['protocols'], message: 'localRoots needs `file` in protocols' });
  }
}

/** The policy a plugin's validated config describes. */
export function gitRemotePolicyOf(config: GitRemotePolicy): GitRemotePolicy {
  const { protocols, localRoots, extraConfigKeys, deniedNetworks, allowedNetworks } = config;
  return { protocols, localRoots, extraConfigKeys, ...(deniedNetworks ? { deniedNetworks } : {}), ...(allowedNetworks ? { allowedNetworks } : {}) };
}
