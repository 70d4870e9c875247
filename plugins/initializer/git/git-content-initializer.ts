import { execFile } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { git, runGit, gitFailure, type GitOptions } from '../../../core/content/git.js';
import { insideFolder } from '../../../core/content/inside-folder.js';
import { WsdError } from '../../../core/errors.js';
import { retry } from '../../../core/retry.js';
import type { ContentInitializer, InitializeOptions, InitializeResult } from '../../../core/initializer/content-initializer.js';
import type { Logger } from '../../../core/observability/logger.js';
import { gitAuth } from './credentials.js';
import { OneTimeSecrets } from './one-time-secret.js';

/** The API's GitInitializer, as delivered (proto field names, enums as names). */
export interface GitSpec {
  remote_uri?: string;
  upstream_Remote_uri?: string;
  target_mode?: 'REMOTE_HEAD' | 'REMOTE_COMMIT' | 'REMOTE_BRANCH' | 'LOCAL_BRANCH';
  clone_taget?: string;
  checkout_location?: string;
  config?: {
    custom_config?: Record<string, string>;
    authentication?: 'NO_AUTH' | 'BASIC_AUTH' | 'BASIC_AUTH_OTS';
    auth_user?: string;
    auth_password?: string;
    auth_ots?: string;
  } | null;
  full_clone?: boolean;
}

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
    this.#secrets = options.secrets ?? new OneTimeSecrets();
  }

  async initialize({ spec, dir, signal, log, user }: InitializeOptions<GitSpec>): Promise<InitializeResult> {
    signal.throwIfAborted();
    const started = Date.now();
    const field = (name: string) => `initializer.git.${name}`;
    if (!spec.remote_uri) throw new WsdError('INVALID_ARGUMENT', `${field('remote_uri')} is required`, { field: field('remote_uri') });
    const checkout = insideFolder(dir, spec.checkout_location ?? '', field('checkout_location'));
    const mode = spec.target_mode ?? 'REMOTE_HEAD';
    if (mode !== 'REMOTE_HEAD' && !spec.clone_taget) {
      throw new WsdError('INVALID_ARGUMENT', `${field('clone_taget')} is required with target_mode ${mode}`, { field: field('clone_taget') });
    }
    const glog = log.child({ remote: redact(spec.remote_uri), mode });
    const { args: auth, env } = await gitAuth(spec, this.#secrets, signal);
    const opts: GitOptions = { cwd: dir, env, ...(user ? { user } : {}), signal };
    const inRepo: GitOptions = { ...opts, cwd: checkout };
    const shallow = !spec.full_clone;

    let branch: string[] = [];
    if (mode === 'REMOTE_BRANCH') {
      const heads = await this.#retry(glog, signal, () => git([...auth, 'ls-remote', '--heads', '--', spec.remote_uri!, `refs/heads/${spec.clone_taget}`], opts));
      if (heads.trim()) branch = ['--branch', spec.clone_taget!];
      else glog.warn('branch not found on the remote; cloning the default branch instead', { branch: spec.clone_taget });
    }
    const config = Object.entries(spec.config?.custom_config ?? {}).flatMap(([k, v]) => ['--config', `${k}=${v}`]);
    const clone = [...auth, 'clone', ...(shallow ? ['--depth=1', '--shallow-submodules'] : []), ...(mode === 'REMOTE_COMMIT' ? ['--no-checkout'] : []), ...config, ...branch, '--', spec.remote_uri, checkout];
    await this.#retry(glog, signal, () => git(clone, opts), () => wipe(checkout, checkout === dir));

    if (mode === 'REMOTE_COMMIT') {
      if (shallow) {
        const fetched = await runGit([...auth, 'fetch', '--depth=20', 'origin', spec.clone_taget!], inRepo);
        if (fetched.code !== 0) {
          const failure = gitFailure('fetch', fetched);
          if (failure.code === 'PERMISSION_DENIED') throw failure;
          glog.warn('fetching the commit shallowly failed; fetching the full history', { error: failure.message });
          await this.#retry(glog, signal, () => git([...auth, 'fetch', '--unshallow', 'origin'], inRepo));
        }
      }
      await git(['checkout', '--detach', spec.clone_taget!], inRepo).catch((error: WsdError) => {
        throw new WsdError('FAILED_PRECONDITION', `commit ${spec.clone_taget} not found in ${redact(spec.remote_uri!)}: ${error.message}`, { field: field('clone_taget') });
      });
    } else if (mode === 'LOCAL_BRANCH') {
      await git(['checkout', '-b', spec.clone_taget!], inRepo);
    }

    if (spec.upstream_Remote_uri) {
      await git(['remote', 'add', 'upstream', spec.upstream_Remote_uri], inRepo);
      const fetched = await runGit([...auth, 'fetch', ...(shallow ? ['--depth=1'] : []), 'upstream'], inRepo);
      if (fetched.code !== 0) glog.warn('fetching upstream failed', { upstream: redact(spec.upstream_Remote_uri), error: gitFailure('fetch', fetched).message });
    }
    if (existsSync(path.join(checkout, '.gitmodules'))) {
      // No credentials for submodules: they may live on other hosts, which must not see the user's token.
      const fileProtocol = this.#options.allowFileSubmodules ? ['-c', 'protocol.file.allow=always'] : [];
      const sub = await runGit([...fileProtocol, 'submodule', 'update', '--init', '--recursive', ...(shallow ? ['--depth=1'] : [])], { ...inRepo, env: {} });
      if (sub.code !== 0) glog.warn('submodules could not be initialized', { error: gitFailure('submodule', sub).message });
    }
    const bytes = await du(checkout);
    glog.info('cloned', { durationMs: Date.now() - started, bytes });
    return { source: 'from-other', stats: [{ kind: this.kind, durationMs: Date.now() - started, bytes }] };
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

}

/** Empties a failed clone's target (keeping the folder itself when it is the workspace root). */
async function wipe(checkout: string, keepFolder: boolean): Promise<void> {
  if (!keepFolder) return rm(checkout, { recursive: true, force: true });
  for (const name of await readdir(checkout).catch(() => [] as string[])) await rm(path.join(checkout, name), { recursive: true, force: true });
}

/** A remote URL without credentials, for logs and messages. */
export function redact(uri: string): string {
  return uri.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1***@');
}

async function du(dir: string): Promise<number> {
  try {
    const { stdout } = await promisify(execFile)('du', ['-sb', dir]);
    return Number(stdout.split('\t')[0]) || 0;
  } catch {
    return 0;
  }
}
