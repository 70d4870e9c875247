import { lstat, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseSnapshotName } from '../../../core/content/backup-store.js';
import { git, runGit, gitFailure, type GitOptions } from '../../../core/content/git.js';
import { resolveInside } from '../../../core/content/inside-folder.js';
import { WsdError, isWsdError } from '../../../core/errors.js';
import type { ContentInitializer, InitializeOptions, InitializeResult, InitializerStats } from '../../../core/initializer/content-initializer.js';
import { gitAuth } from '../git/credentials.js';
import type { GitSpec } from '../git/git-content-initializer.js';
import { checkBranch, checkCommit, checkRemote, defaultGitRemotePolicy, isKeptRepositoryKey, protocolEnv, type GitRemotePolicy } from '../git/git-policy.js';
import { OneTimeSecrets } from '../git/one-time-secret.js';

export interface PrebuildSpec {
  prebuild?: { snapshot?: string; from_volume_snapshot?: boolean } | null;
  git?: GitSpec[];
}

/**
 * Restores a prebuild snapshot, then brings each git checkout to its target while keeping what the prebuild left in
 * the working tree (stash, switch, pop; on a conflict the target wins and the stash is kept for the user).
 * A missing or broken snapshot falls back to plain clones (`from-other`); otherwise the source is `from-prebuild`.
 */
export class PrebuildContentInitializer implements ContentInitializer<PrebuildSpec> {
  readonly kind = 'prebuild';
  readonly #secrets: OneTimeSecrets;
  readonly #policy: GitRemotePolicy;

  /** `policy`: the git plugin's transports and local roots, which the prebuild's fetches obey as well. */
  readonly #allowOtherOwners: boolean;

  constructor(options: { secrets?: OneTimeSecrets; policy?: GitRemotePolicy; allowOtherOwners?: boolean } = {}) {
    this.#secrets = options.secrets ?? new OneTimeSecrets();
    this.#policy = options.policy ?? defaultGitRemotePolicy;
    this.#allowOtherOwners = options.allowOtherOwners ?? true;
  }

  async initialize(options: InitializeOptions<PrebuildSpec>): Promise<InitializeResult> {
    const { spec, dir, archives, log, initializers, user, signal } = options;
    signal.throwIfAborted();
    const started = Date.now();
    const gits = spec.git ?? [];
    const name = spec.prebuild?.snapshot;
    try {
      if (!name) throw new WsdError('NOT_FOUND', 'no prebuild snapshot given');
      if (!this.#allowOtherOwners && parseSnapshotName(name, 'initializer.prebuild.prebuild.snapshot').owner !== options.workspace.owner) {
        throw new WsdError('FAILED_PRECONDITION', 'the prebuild snapshot belongs to another owner (initializers.prebuild.allowOtherOwners is off)');
      }
      await archives.restore(await archives.snapshot(name), dir, signal, { ...(options.quotaBytes ? { quotaBytes: options.quotaBytes } : {}) });
    } catch (error) {
      if (!isWsdError(error) || !['NOT_FOUND', 'DATA_LOSS', 'INVALID_ARGUMENT', 'FAILED_PRECONDITION'].includes(error.code)) throw error;
      log.warn('prebuild snapshot unusable; falling back to cloning', { snapshot: name, error: error.message });
      for (const entry of await readdir(dir)) await rm(path.join(dir, entry), { recursive: true, force: true });
      const stats: InitializerStats[] = [];
      for (const gitSpec of gits) stats.push(...(await initializers.get('git').initialize({ ...options, spec: gitSpec })).stats);
      return { source: 'from-other', stats };
    }

    for (const [i, gitSpec] of gits.entries()) {
      const field = `initializer.prebuild.git[${i}]`;
      // The snapshot's content — its `.git/config` included — was made by a workspace whose user controlled it.
      // So: the checkout must be a real folder with a real `.git` folder (not a symlink or a gitfile leading
      // elsewhere), its config loses every setting that could run a command, and fetches go to the spec's checked
      // remote, never to whatever the restored config calls `origin`.
      const remote = await checkRemote(gitSpec.remote_uri, this.#policy, `${field}.remote_uri`);
      const checkout = await resolveInside(dir, gitSpec.checkout_location ?? '', `${field}.checkout_location`, { leaf: 'folder' });
      await assertPlainRepository(checkout, `${field}.checkout_location`);
      // Writes (stash, checkout) need the checkout's owner; its config is sanitized first, so root is safe here.
      const owner = user ?? (await ownerOf(checkout));
      const auth = await gitAuth({ ...gitSpec, remote_uri: remote.uri }, this.#secrets, signal, remote.credentials);
      const opts: GitOptions = { cwd: checkout, env: { ...auth.env, ...protocolEnv([remote.protocol]) }, ...(owner ? { user: owner } : {}), signal };
      const removed = await sanitizeRepositoryConfig(checkout, opts);
      if (removed.length > 0) log.warn('removed settings from the prebuild checkout that could run commands', { checkout: gitSpec.checkout_location ?? '', keys: removed.slice(0, 20) });
      const stash = await git(['-c', 'user.name=wsd', '-c', 'user.email=wsd@localhost', 'stash', 'push', '--include-untracked', '-m', 'wsd: prebuild changes'], opts);
      const stashed = !/No local changes to save/.test(stash);
      const shallow = (await git(['rev-parse', '--is-shallow-repository'], opts)).trim() === 'true';
      await this.#switch(gitSpec, remote.uri, opts, auth.args, shallow, field);
      if (stashed) {
        const pop = await runGit(['stash', 'pop'], opts);
        if (pop.code !== 0) {
          // The target wins; the prebuild's changes stay in the stash (`git stash list`), nothing is lost.
          await git(['reset', '--hard', 'HEAD'], opts);
          log.warn('prebuild changes conflict with the target; kept the target, changes are in the git stash', { checkout: gitSpec.checkout_location ?? '', error: gitFailure('stash', pop).message });
        }
      }
    }
    return { source: 'from-prebuild', stats: [{ kind: this.kind, durationMs: Date.now() - started }] };
  }

  /**
   * Switches to the spec's target, fetched from the checked remote URL; fetches keep a full prebuild clone full
   * (`--depth` only on shallow ones). Targets are checked by mode and passed after `--end-of-options` / before `--`.
   */
  async #switch(spec: GitSpec, remote: string, opts: GitOptions, auth: string[], shallow: boolean, field: string): Promise<void> {
    const depth = (n: number) => (shallow ? [`--depth=${n}`] : []);
    const fetch = (ref: string, n: number) => git([...auth, 'fetch', ...depth(n), '--end-of-options', remote, ref], opts);
    switch (spec.target_mode ?? 'REMOTE_HEAD') {
      case 'REMOTE_HEAD': {
        const branch = (await git(['symbolic-ref', '--short', '-q', 'HEAD'], opts).catch(() => '')).trim();
        await fetch('HEAD', 1);
        await git(branch ? ['checkout', '-B', checkBranch(branch, `${field}.checkout_location (its current branch)`), 'FETCH_HEAD', '--'] : ['checkout', '--detach', 'FETCH_HEAD', '--'], opts);
        break;
      }
      case 'REMOTE_BRANCH': {
        const target = checkBranch(spec.clone_taget, `${field}.clone_taget`);
        await fetch(`refs/heads/${target}`, 1);
        await git(['checkout', '-B', target, 'FETCH_HEAD', '--'], opts);
        break;
      }
      case 'REMOTE_COMMIT': {
        const target = checkCommit(spec.clone_taget, `${field}.clone_taget`);
        await fetch(target, 20);
        await git(['checkout', '--detach', target, '--'], opts);
        break;
      }
      case 'LOCAL_BRANCH':
        await git(['checkout', '-B', checkBranch(spec.clone_taget, `${field}.clone_taget`), '--'], opts);
        break;
    }
  }
}

/**
 * Removes from a checkout's own `.git/config` every setting that is not on the kept list (remotes' URLs, branches,
 * submodules, safe preferences): `core.fsmonitor`, `core.sshCommand`, `filter.*` (run by checkout for
 * `.gitattributes`), `include.path`, `url.*.insteadOf`, `credential.helper`, … Reading it runs nothing.
 * Returns the keys removed.
 */
async function sanitizeRepositoryConfig(checkout: string, opts: GitOptions): Promise<string[]> {
  const file = path.join(checkout, '.git', 'config');
  const listed = await runGit(['config', '--file', file, '--no-includes', '--name-only', '--list'], opts);
  if (listed.code !== 0) throw new WsdError('FAILED_PRECONDITION', `the prebuild checkout's git config cannot be read: ${gitFailure('config', listed).message}`);
  const removed = [...new Set(listed.stdout.split('\n').filter(Boolean))].filter((key) => !isKeptRepositoryKey(key));
  for (const key of removed) await git(['config', '--file', file, '--unset-all', '--', key], opts).catch(() => undefined);
  return removed;
}

/** The owner of a checkout, when wsd (root) should act as them; undefined for root-owned content or when not root. */
async function ownerOf(checkout: string): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const info = await stat(checkout);
  return info.uid === 0 ? undefined : { uid: info.uid, gid: info.gid };
}

/**
 * A prebuild checkout must be a plain repository: a real `.git` folder with a real `config` file, and none of the
 * files that make git read another folder — `commondir` (a second, unsanitized config), `config.worktree`,
 * `objects/info/alternates` (another workspace's objects).
 */
async function assertPlainRepository(checkout: string, field: string): Promise<void> {
  const refuse = (why: string) => new WsdError('FAILED_PRECONDITION', `${field}: the prebuild's repository ${why}`, { field });
  const dotGit = path.join(checkout, '.git');
  if (!(await lstat(dotGit).catch(() => undefined))?.isDirectory()) throw refuse('has no real .git folder');
  if (!(await lstat(path.join(dotGit, 'config')).catch(() => undefined))?.isFile()) throw refuse('has no real .git/config file');
  for (const name of ['commondir', 'config.worktree', 'objects/info/alternates', 'objects/info/http-alternates']) {
    if (await lstat(path.join(dotGit, name)).catch(() => undefined)) throw refuse(`has .git/${name}, which would make git read another folder`);
  }
}
