import { OneTimeSecrets } from './one-time-secret.js';
import { WsdError } from '../../../core/plugin-api.js';

export interface GitAuthSpec {
  remote_uri?: string;
  config?: {
    authentication?: 'NO_AUTH' | 'BASIC_AUTH' | 'BASIC_AUTH_OTS';
    auth_user?: string;
    auth_password?: string;
    auth_ots?: string;
  } | null;
}

// The helper answers only for the remote's own host, and reads the credentials from the environment of the git
// process: they never appear in an argument list (visible in /proc), a log line, or a request to another host (a
// submodule or redirect elsewhere gets nothing).
const credentialHelper =
  '!f() { test "$1" = get || exit 0; h=; while IFS== read -r k v; do test "$k" = host && h="$v"; done; ' +
  'test "$h" = "$WSD_GIT_HOST" || exit 0; echo "username=$WSD_GIT_USER"; echo "password=$WSD_GIT_PASSWORD"; }; f';

export interface GitAuth {
  /** `-c` arguments that install the helper (empty without auth). */
  args: string[];
  /** Environment for the git process (empty without auth). */
  env: Record<string, string>;
}

/**
 * Credentials for one git spec: none, basic, or fetched once from a one-time secret. `fromUrl`: what the remote URL
 * itself carried (`https://user:token@host/…`, taken out of the URL by the policy check), used when the spec names
 * no authentication.
 */
export async function gitAuth(spec: GitAuthSpec, secrets: OneTimeSecrets, signal?: AbortSignal, fromUrl?: { user: string; password: string }): Promise<GitAuth> {
  const config = spec.config ?? {};
  let user: string;
  let password: string;
  switch (config.authentication ?? 'NO_AUTH') {
    case 'NO_AUTH':
      if (!fromUrl) return { args: [], env: {} };
      ({ user, password } = fromUrl);
      break;
    case 'BASIC_AUTH':
      user = config.auth_user ?? '';
      password = config.auth_password ?? '';
      break;
    case 'BASIC_AUTH_OTS': {
      if (!config.auth_ots) throw new WsdError('INVALID_ARGUMENT', 'initializer.git.config.auth_ots is required with BASIC_AUTH_OTS', { field: 'initializer.git.config.auth_ots' });
      ({ user, password } = await secrets.get(config.auth_ots, signal));
      break;
    }
    default:
      throw new WsdError('INVALID_ARGUMENT', `initializer.git.config.authentication ${JSON.stringify(config.authentication)} is not supported`, { field: 'initializer.git.config.authentication' });
  }
  // They travel in the environment and through the credential helper's `key=value` lines: no NUL, no newline.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(user) || /[\u0000-\u001f\u007f]/.test(password)) {
    throw new WsdError('INVALID_ARGUMENT', 'initializer.git.config: the user name and password must not contain control characters', { field: 'initializer.git.config' });
  }
  let host: string;
  try {
    host = new URL(spec.remote_uri ?? '').host;
  } catch {
    throw new WsdError('INVALID_ARGUMENT', 'initializer.git.remote_uri must be a URL (http, https, ssh, file) to use authentication', { field: 'initializer.git.remote_uri' });
  }
  return {
    args: ['-c', 'credential.helper=', '-c', `credential.helper=${credentialHelper}`],
    env: { WSD_GIT_HOST: host, WSD_GIT_USER: user, WSD_GIT_PASSWORD: password },
  };
}
