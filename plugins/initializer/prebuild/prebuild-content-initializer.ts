import { lstat, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { gitAuth } from '../git/credentials.js';
import { redactGitSpec, type GitSpec } from '../git/git-content-initializer.js';
import { checkBranch, checkCommit, checkRemote, defaultGitRemotePolicy, isKeptRepositoryKey, networksOf, protocolEnv, type GitRemotePolicy } from '../git/git-policy.js';
import { OneTimeSecrets } from '../git/one-time-secret.js';
import { checkoutUser, createExclusive, filteredConfig, git, gitFailure, isWsdError, parseSnapshotName, realFolderInside, runGit, WsdError, type ContentInitializer, type GitOptions, type InitializeOptions, type InitializeResult, type InitializerStats, type PrebuildSpec } from '../../../core/plugin-api.js';

export type { PrebuildSpec } from '../../../core/plugin-api.js';

/**
 * Restores a prebuild snapshot, then brings each git checkout to its target while keeping what the prebuild left in
 * the working tree (stash, switch, pop; on a conflict the target wins and the stash is kept for the user).
 * A missing or broken snapshot falls back to plain clones (`from-other`); otherwise the source is `from-prebuild`.
 */
export class PrebuildContentInitializer implements ContentInitializer<PrebuildSpec> {
  readonly kind = 'prebuild';
  readonly #secrets: OneTimeSecrets;
  readonly #policy: GitRemotePolicy;
  readonly #allowOtherOwners: boolean;

  /** `policy`: transports, local roots and networks of the prebuild's fetches (configured like the git plugin's). */
  constructor(options: { secrets?: OneTimeSecrets; policy?: GitRemotePolicy; allowOtherOwners?: boolean } = {}) {
    this.#policy = options.policy ?? defaultGitRemotePolicy;
    this.#secrets = options.secrets ?? new OneTimeSecrets({ attempts: 20, delayMs: 500, networks: networksOf(this.#policy) });
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
      const warnings = [`prebuild snapshot ${name ? JSON.stringify(name) : '(none given)'} not used (${error.message}): cloned instead`];
      for (const gitSpec of gits) {
        const result = await initializers.get('git').initialize({ ...options, spec: gitSpec });
        stats.push(...result.stats);
        warnings.push(...(result.warnings ?? []));
      }
      return { source: 'from-other', stats, warnings };
    }

    const warnings: string[] = [];
    for (const [i, gitSpec] of gits.entries()) {
      const field = `initializer.prebuild.git[${i}]`;
      // The snapshot's content — its `.git/config` included — was made by a workspace whose user controlled it.
      // So: the checkout must be a real folder with a real `.git` folder (not a symlink or a gitfile leading
      // elsewhere), its config loses every setting that could run a command, and fetches go to the spec's checked
      // remote, never to whatever the restored config calls `origin`.
      const remote = await checkRemote(gitSpec.remote_uri, this.#policy, `${field}.remote_uri`);
      const target = checkTarget(gitSpec, field);
      // A reader: the checkout must already be a real folder below the workspace (nothing is created on the way).
      const checkout = await realFolderInside(dir, gitSpec.checkout_location ?? '');
      if (!checkout) throw new WsdError('FAILED_PRECONDITION', `${field}.checkout_location is not a real folder in the prebuild`, { field: `${field}.checkout_location` });
      await assertPlainRepository(checkout, `${field}.checkout_location`);
      // Writes (stash, checkout) need the checkout's owner; its config is sanitized first, so root is safe here.
      const owner = await checkoutUser(checkout, user);
      const auth = await gitAuth({ ...gitSpec, remote_uri: remote.uri }, this.#secrets, signal, remote.credentials);
      const opts: GitOptions = { cwd: checkout, env: { ...auth.env, ...protocolEnv([remote.protocol]) }, ...(owner ? { user: owner } : {}), signal };
      // Submodules of the restored checkout keep configs of their own (.git/modules): git must not walk into them.
      const noSubmodules = ['-c', 'submodule.recurse=false', '-c', 'fetch.recurseSubmodules=false', '-c', 'core.logAllRefUpdates=false'];
      const removed = await sanitizeRepositoryConfig(checkout, owner);
      if (removed.length > 0) log.warn('removed settings from the prebuild checkout that could run commands', { checkout: gitSpec.checkout_location ?? '', keys: removed.slice(0, 20) });
      const stash = await git([...noSubmodules, '-c', 'user.name=wsd', '-c', 'user.email=wsd@localhost', 'stash', 'push', '--include-untracked', '-m', 'wsd: prebuild changes'], opts);
      const stashed = !/No local changes to save/.test(stash);
      const shallow = (await git(['rev-parse', '--is-shallow-repository'], opts)).trim() === 'true';
      await this.#switch(gitSpec, target, remote.uri, opts, { fetch: [...noSubmodules, ...auth.args, ...remote.gitArgs], local: noSubmodules }, shallow);
      if (stashed) {
        const pop = await runGit([...noSubmodules, 'stash', 'pop'], opts);
        if (pop.code !== 0) {
          // The target wins; the prebuild's changes stay in the stash (`git stash list`), nothing is lost.
          await git([...noSubmodules, 'reset', '--hard', 'HEAD'], opts);
          log.warn('prebuild changes conflict with the target; kept the target, changes are in the git stash', { checkout: gitSpec.checkout_location ?? '', error: gitFailure('stash', pop).message });
          warnings.push(`the prebuild's changes in ${gitSpec.checkout_location || 'the checkout'} conflict with the target: the target is checked out, the changes are in the git stash`);
        }
      }
    }
    return { source: 'from-prebuild', stats: [{ kind: this.kind, durationMs: Date.now() - started }], ...(warnings.length ? { warnings } : {}) };
  }

  /**
   * Switches to the spec's target, fetched from the checked remote URL; fetches keep a full prebuild clone full
   * (`--depth` only on shallow ones). Targets are checked by mode and passed after `--end-of-options` / before `--`.
   */
  async #switch(spec: GitSpec, target: string | undefined, remote: string, opts: GitOptions, args: { fetch: string[]; local: string[] }, shallow: boolean): Promise<void> {
    const depth = (n: number) => (shallow ? [`--depth=${n}`] : []);
    const fetch = (ref: string, n: number) => git([...args.fetch, 'fetch', ...depth(n), '--end-of-options', remote, ref], opts);
    const local = (...rest: string[]) => git([...args.local, ...rest], opts);
    switch (spec.target_mode ?? 'REMOTE_HEAD') {
      case 'REMOTE_HEAD': {
        const branch = (await local('symbolic-ref', '--short', '-q', 'HEAD').catch(() => '')).trim();
        await fetch('HEAD', 1);
        // The restored checkout's branch name comes from content: it is checked like a requested one.
        await (branch ? local('checkout', '-B', checkBranch(branch, 'the prebuild checkout\'s current branch'), 'FETCH_HEAD', '--') : local('checkout', '--detach', 'FETCH_HEAD', '--'));
        break;
      }
      case 'REMOTE_BRANCH':
        await fetch(`refs/heads/${target!}`, 1);
        await local('checkout', '-B', target!, 'FETCH_HEAD', '--');
        break;
      case 'REMOTE_COMMIT':
        await fetch(target!, 20);
        await local('checkout', '--detach', target!, '--');
        break;
      case 'LOCAL_BRANCH':
        await local('checkout', '-B', target!, '--');
        break;
    }
  }

  redact(spec: PrebuildSpec): PrebuildSpec {
    return spec.git ? { ...spec, git: spec.git.map(redactGitSpec) } : spec;
  }

  checkoutLocations(spec: PrebuildSpec): string[] {
    return (spec.git ?? []).map((git) => git.checkout_location ?? '');
  }
}

/** The spec's target, checked by its mode (before anything runs in the checkout). */
function checkTarget(spec: GitSpec, field: string): string | undefined {
  switch (spec.target_mode ?? 'REMOTE_HEAD') {
    case 'REMOTE_HEAD':
      return undefined;
    case 'REMOTE_COMMIT':
      return checkCommit(spec.clone_taget, `${field}.clone_taget`);
    default:
      return checkBranch(spec.clone_taget, `${field}.clone_taget`);
  }
}

/**
 * Replaces a checkout's own `.git/config` by one holding only the kept keys (remote URLs, branches, submodules, safe
 * preferences): `core.fsmonitor`, `core.sshCommand`, `filter.*` (run by checkout for `.gitattributes`),
 * `include.path`, `url.*.insteadOf`, `credential.helper`, … are gone. A whole new file (temp + rename), never key
 * by key: an edit that fails (a planted `config.lock`) must not leave a key behind. Returns the keys removed.
 */
async function sanitizeRepositoryConfig(checkout: string, owner: { uid: number; gid: number } | undefined): Promise<string[]> {
  const file = path.join(checkout, '.git', 'config');
  const { text, dropped } = await filteredConfig(file, isKeptRepositoryKey);
  const tmp = `${file}.wsd-tmp`;
  const handle = await createExclusive(tmp, owner);
  try {
    await handle.writeFile(text);
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
  return dropped;
}

/**
 * A prebuild checkout must be a plain repository: a real `.git` folder in which every entry is a real folder or a
 * regular file — a symlink in `logs/`, `refs/` or `objects/` would have git (root, when the content is root's) write
 * a reflog or ref wherever it points — and none of the files that make git read another folder: `commondir` (a
 * second, unsanitized config), `config.worktree`, `objects/info/alternates` (another workspace's objects).
 */
async function assertPlainRepository(checkout: string, field: string): Promise<void> {
  const refuse = (why: string) => new WsdError('FAILED_PRECONDITION', `${field}: the prebuild's repository ${why}`, { field });
  const dotGit = path.join(checkout, '.git');
  if (!(await lstat(dotGit).catch(() => undefined))?.isDirectory()) throw refuse('has no real .git folder');
  if (!(await lstat(path.join(dotGit, 'config')).catch(() => undefined))?.isFile()) throw refuse('has no real .git/config file');
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (!entry.isFile()) throw refuse(`has ${path.relative(checkout, full)}, which is neither a folder nor a regular file`);
    }
  };
  await walk(dotGit);
  for (const name of ['commondir', 'config.worktree', 'objects/info/alternates', 'objects/info/http-alternates']) {
    if (await lstat(path.join(dotGit, name)).catch(() => undefined)) throw refuse(`has .git/${name}, which would make git read another folder`);
  }
}
