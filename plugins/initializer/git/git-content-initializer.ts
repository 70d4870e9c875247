import { lstat, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { gitAuth } from './credentials.js';
import { checkBranch, checkCommit, checkCustomConfig, checkRemote, defaultGitRemotePolicy, networksOf, protocolEnv, type GitRemotePolicy } from './git-policy.js';
import { OneTimeSecrets } from './one-time-secret.js';
import { git, gitFailure, realFolderInside, scrubSecrets, resolveInside, retry, runGit, spawnTracked, WsdError, type ContentInitializer, type GitOptions, type GitResult, type InitializeOptions, type InitializeResult, type Logger, type GitSpec } from '../../../core/plugin-api.js';

export type { GitSpec } from '../../../core/plugin-api.js';

export interface GitInitializerOptions {
  /** How long transient clone/fetch failures are retried, in ms. */
  retryTimeoutMs: number;
  /** First retry delay in ms; doubles each retry. */
  initialRetryDelayMs: number;
  secrets?: OneTimeSecrets;
  /**
   * Let submodules use local paths / file:// URLs. Off by default (git's own default): a repository could
   * otherwise pull another workspace's files from this node into its checkout.
   */
  allowFileSubmodules?: boolean;
  /** Transports, local repositories and config keys a request may use; default https and ssh, nothing local. */
  policy?: GitRemotePolicy;
}

/**
 * Clones a repository into the workspace: shallow unless `full_clone`, any of the four target modes, custom config,
 * an `upstream` remote, submodules, basic auth or one-time-secret auth. Transient failures are retried with
 * backoff for `retryTimeoutMs`; access denied is not.
 */
export class GitContentInitializer implements ContentInitializer<GitSpec> {
  readonly kind = 'git';
  readonly #options: GitInitializerOptions;
  readonly #secrets: OneTimeSecrets;

  constructor(options: GitInitializerOptions) {
    this.#options = options;
    this.#secrets = options.secrets ?? new OneTimeSecrets({ attempts: 20, delayMs: 500, networks: networksOf(options.policy ?? defaultGitRemotePolicy) });
  }

  async initialize({ spec, dir, signal, log, user, progress }: InitializeOptions<GitSpec>): Promise<InitializeResult> {
    signal.throwIfAborted();
    const phase = (name: string) => progress?.({ phase: name });
    // Said to the caller, not only logged: the content is usable, but not what the spec asked for.
    const warnings: string[] = [];
    const started = Date.now();
    const field = (name: string) => `initializer.git.${name}`;
    const policy = this.#options.policy ?? defaultGitRemotePolicy;
    // Every field is checked before anything runs: the remote and upstream against the transport allow-list, the
    // config keys against the safe list, the target by its mode, the checkout location on disk.
    const remote = await checkRemote(spec.remote_uri, policy, field('remote_uri'));
    const upstream = spec.upstream_Remote_uri ? await checkRemote(spec.upstream_Remote_uri, policy, field('upstream_Remote_uri')) : undefined;
    const config = checkCustomConfig(spec.config?.custom_config, policy, field('config.custom_config'));
    const mode = spec.target_mode ?? 'REMOTE_HEAD';
    const target =
      mode === 'REMOTE_COMMIT' ? checkCommit(spec.clone_taget, field('clone_taget')) : mode === 'REMOTE_HEAD' ? undefined : checkBranch(spec.clone_taget, field('clone_taget'));
    const checkout = await resolveInside(dir, spec.checkout_location ?? '', field('checkout_location'), { leaf: 'new-folder', ...(user ? { owner: user } : {}) });
    const glog = log.child({ remote: scrubSecrets(remote.uri), mode });
    const credentials = await gitAuth({ ...spec, remote_uri: remote.uri }, this.#secrets, signal, remote.credentials);
    // Every command that talks to origin: credentials for its host, its checked addresses pinned.
    const auth = [...credentials.args, ...remote.gitArgs];
    const env = credentials.env;
    const opts: GitOptions = { cwd: dir, env: { ...env, ...protocolEnv([remote.protocol]) }, ...(user ? { user } : {}), signal };
    const inRepo: GitOptions = { ...opts, cwd: checkout };
    const shallow = !spec.full_clone;

    let branch: string[] = [];
    if (mode === 'REMOTE_BRANCH') {
      phase('looking up the branch');
      const heads = await this.#retry(glog, signal, () => git([...auth, 'ls-remote', '--heads', '--', remote.uri, `refs/heads/${target}`], opts));
      if (heads.trim()) branch = ['--branch', target!];
      else {
        glog.warn('branch not found on the remote; cloning the default branch instead', { branch: target });
        warnings.push(`branch ${JSON.stringify(target)} does not exist in ${scrubSecrets(remote.uri)}: cloned the default branch instead`);
      }
    }
    phase('cloning');
    const clone = [...auth, 'clone', ...(shallow ? ['--depth=1', '--shallow-submodules'] : []), ...(mode === 'REMOTE_COMMIT' ? ['--no-checkout'] : []), ...config, ...branch, '--', remote.uri, checkout];
    await this.#retry(glog, signal, () => git(clone, opts), () => wipe(checkout, checkout === dir));

    if (mode === 'REMOTE_COMMIT') {
      phase('fetching the commit');
      if (shallow) {
        const fetched = await runGit([...auth, 'fetch', '--depth=20', '--end-of-options', 'origin', target!], inRepo);
        if (fetched.code !== 0) {
          const failure = gitFailure('fetch', fetched);
          if (failure.code === 'PERMISSION_DENIED') throw failure;
          glog.warn('fetching the commit shallowly failed; fetching the full history', { error: failure.message });
          await this.#retry(glog, signal, () => git([...auth, 'fetch', '--unshallow', 'origin'], inRepo));
        }
      }
      // `checkout` knows no --end-of-options; the target is hex (checked above) and `--` ends the revisions.
      phase('checking out');
      await git(['checkout', '--detach', target!, '--'], inRepo).catch((error: WsdError) => {
        throw new WsdError('FAILED_PRECONDITION', `commit ${target} not found in ${scrubSecrets(remote.uri)}: ${error.message}`, { field: field('clone_taget') });
      });
    } else if (mode === 'LOCAL_BRANCH') {
      await git(['checkout', '-b', target!, '--'], inRepo);
    }

    if (upstream) {
      phase('fetching upstream');
      await git(['remote', 'add', '--', 'upstream', upstream.uri], inRepo);
      // Credentials the upstream URL carried are its own; otherwise the origin's (answered only for its host).
      const upstreamAuth = upstream.credentials ? await gitAuth({ remote_uri: upstream.uri }, this.#secrets, signal, upstream.credentials) : credentials;
      const fetched = await runGit([...upstreamAuth.args, ...upstream.gitArgs, 'fetch', ...(shallow ? ['--depth=1'] : []), 'upstream'], { ...inRepo, env: { ...upstreamAuth.env, ...protocolEnv([upstream.protocol]) } });
      if (fetched.code !== 0) {
        const error = gitFailure('fetch', fetched).message;
        glog.warn('fetching upstream failed', { upstream: scrubSecrets(upstream.uri), error });
        warnings.push(`fetching upstream ${scrubSecrets(upstream.uri)} failed (the remote is added, without its history): ${error}`);
      }
    }
    // No credentials for submodules: they may live on other hosts, which must not see the user's token.
    const submodulePolicy: GitRemotePolicy = { ...policy, protocols: policy.protocols.filter((p) => p !== 'file' || this.#options.allowFileSubmodules) };
    if (await lstat(path.join(checkout, '.gitmodules')).catch(() => undefined)) phase('submodules');
    await initSubmodules(checkout, { ...inRepo, env: {} }, submodulePolicy, shallow, glog, warnings);
    phase('measuring');
    const bytes = await du(checkout);
    progress?.({ bytes });
    glog.info('cloned', { durationMs: Date.now() - started, bytes });
    return { source: 'from-other', stats: [{ kind: this.kind, durationMs: Date.now() - started, bytes }], ...(warnings.length ? { warnings } : {}) };
  }

  /** Retries transient failures with doubling delays for retryTimeoutMs; `reset` runs before each retry. */
  #retry<T>(log: Logger, signal: AbortSignal, fn: () => Promise<T>, reset?: () => Promise<void>): Promise<T> {
    return retry(fn, {
      deadlineMs: this.#options.retryTimeoutMs,
      initialDelayMs: this.#options.initialRetryDelayMs,
      signal,
      onRetry: async (error, { delayMs }) => {
        log.warn('git failed transiently; retrying', { delayMs, error: (error as Error).message });
        await reset?.();
      },
    });
  }


  /** Credentials out (the password and the one-time-secret URL); core scrubs URL userinfo on top. */
  redact(spec: GitSpec): GitSpec {
    return redactGitSpec(spec);
  }

  checkoutLocations(spec: GitSpec): string[] {
    return [spec.checkout_location ?? ''];
  }
}

/** A git spec without its credentials (also used by prebuild for its git specs). */
export function redactGitSpec(spec: GitSpec): GitSpec {
  const out: GitSpec = { ...spec };
  if (spec.remote_uri) out.remote_uri = withoutUserinfo(spec.remote_uri);
  if (spec.upstream_Remote_uri) out.upstream_Remote_uri = withoutUserinfo(spec.upstream_Remote_uri);
  if (spec.config) {
    const { auth_password, auth_ots, ...config } = spec.config;
    out.config = { ...config, ...(auth_password ? { auth_password: '(redacted)' } : {}), ...(auth_ots ? { auth_ots: '(redacted)' } : {}) };
  }
  return out;
}

/** A URL without its user name and password, parsed the way git's URL was checked (`user:p@ss@host`). */
function withoutUserinfo(uri: string): string {
  if (!URL.canParse(uri)) return uri;
  const url = new URL(uri);
  if (!url.username && !url.password) return uri;
  url.username = '';
  url.password = '';
  return url.href;
}

/** Submodules nested deeper than this are left uninitialized (with a warning). */
const maxSubmoduleDepth = 8;

/**
 * `git submodule update --init`, one level at a time, so that every submodule URL — as git resolved it, relative
 * ones against the superproject's remote — is checked like a remote (transport, local roots, networks) before git
 * fetches it; a refused one is left out (`update = none`) with a warning. Failures are warnings: the checkout
 * itself is usable without its submodules.
 */
async function initSubmodules(repo: string, opts: GitOptions, policy: GitRemotePolicy, shallow: boolean, log: Logger, warnings: string[], depth = 0): Promise<void> {
  if (!(await lstat(path.join(repo, '.gitmodules')).catch(() => undefined))?.isFile()) return;
  const where = path.relative(opts.cwd, repo) || 'the checkout';
  if (depth >= maxSubmoduleDepth) {
    log.warn('submodules nested this deep are not initialized', { depth });
    warnings.push(`submodules of ${where} are not initialized: nested deeper than ${maxSubmoduleDepth} levels`);
    return;
  }
  const env = { ...opts.env, ...protocolEnv(policy.protocols) };
  const here: GitOptions = { ...opts, cwd: repo, env };
  const init = await runGit(['submodule', 'init'], here);
  if (init.code !== 0) {
    const error = gitFailure('submodule', init).message;
    log.warn('submodules could not be initialized', { error });
    warnings.push(`submodules of ${where} could not be initialized: ${error}`);
    return;
  }
  const listed = await runGit(['config', '--local', '-z', '--get-regexp', '^submodule\\..*\\.url$'], here);
  const pins: string[] = [];
  const names: string[] = [];
  for (const entry of listed.stdout.split('\0').filter(Boolean)) {
    const newline = entry.indexOf('\n');
    const key = entry.slice(0, newline);
    const name = key.slice('submodule.'.length, -'.url'.length);
    // Git fetches what the config says: a checked URL is written back as checked (resolved local path, no
    // userinfo), a refused one is switched off. If either write fails, no submodule of this level is fetched.
    let configured: GitResult;
    try {
      const checked = await checkRemote(entry.slice(newline + 1), policy, `submodule ${name}`);
      pins.push(...checked.gitArgs);
      names.push(name);
      configured = await runGit(['config', '--local', '--', key, checked.uri], here);
    } catch (error) {
      log.warn('submodule left out: its URL is not allowed', { submodule: name, error: (error as Error).message });
      warnings.push(`submodule ${name} left out: ${(error as Error).message}`);
      configured = await runGit(['config', '--local', '--', `submodule.${name}.update`, 'none'], here);
    }
    if (configured.code !== 0) {
      const error = gitFailure('config', configured).message;
      log.warn('submodules left out: their configuration could not be written', { error });
      warnings.push(`submodules of ${where} left out: their configuration could not be written: ${error}`);
      return;
    }
  }
  const update = await runGit([...pins, 'submodule', 'update', ...(shallow ? ['--depth=1'] : [])], here);
  if (update.code !== 0) {
    const error = gitFailure('submodule', update).message;
    log.warn('submodules could not be initialized', { error });
    warnings.push(`submodules of ${where} could not be initialized: ${error}`);
  }
  for (const name of names) {
    const where = await runGit(['config', '--file', '.gitmodules', `submodule.${name}.path`], here);
    const inner = where.code === 0 ? await realFolderInside(repo, where.stdout.trim()) : undefined;
    if (inner) await initSubmodules(inner, opts, policy, shallow, log, warnings, depth + 1);
  }
}

/** Empties a failed clone's target (keeping the folder itself when it is the workspace root). */
async function wipe(checkout: string, keepFolder: boolean): Promise<void> {
  if (!keepFolder) return rm(checkout, { recursive: true, force: true });
  for (const name of await readdir(checkout).catch(() => [] as string[])) await rm(path.join(checkout, name), { recursive: true, force: true });
}


/** Bytes under `dir` (0 if du fails): a tracked child like every other, so a daemon stop ends it too. */
function du(dir: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawnTracked('du', ['-sb', '--', dir], { stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.once('error', () => resolve(0));
    child.once('close', (code) => resolve(code === 0 ? Number(stdout.split('\t')[0]) || 0 : 0));
  });
}
