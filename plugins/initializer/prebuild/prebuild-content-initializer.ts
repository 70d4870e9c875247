import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { checkoutUser, git, runGit, gitFailure, type GitOptions } from '../../../core/content/git.js';
import { insideFolder } from '../../../core/content/inside-folder.js';
import { WsdError, isWsdError } from '../../../core/errors.js';
import type { ContentInitializer, InitializeOptions, InitializeResult, InitializerStats } from '../../../core/initializer/content-initializer.js';
import { gitAuth } from '../git/credentials.js';
import type { GitSpec } from '../git/git-content-initializer.js';
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

  constructor(options: { secrets?: OneTimeSecrets } = {}) {
    this.#secrets = options.secrets ?? new OneTimeSecrets();
  }

  async initialize(options: InitializeOptions<PrebuildSpec>): Promise<InitializeResult> {
    const { spec, dir, archives, log, initializers, user, signal } = options;
    signal.throwIfAborted();
    const started = Date.now();
    const gits = spec.git ?? [];
    const name = spec.prebuild?.snapshot;
    try {
      if (!name) throw new WsdError('NOT_FOUND', 'no prebuild snapshot given');
      await archives.restore(await archives.snapshot(name), dir, signal);
    } catch (error) {
      if (!isWsdError(error) || !['NOT_FOUND', 'DATA_LOSS', 'INVALID_ARGUMENT', 'FAILED_PRECONDITION'].includes(error.code)) throw error;
      log.warn('prebuild snapshot unusable; falling back to cloning', { snapshot: name, error: error.message });
      for (const entry of await readdir(dir)) await rm(path.join(dir, entry), { recursive: true, force: true });
      const stats: InitializerStats[] = [];
      for (const gitSpec of gits) stats.push(...(await initializers.get('git').initialize({ ...options, spec: gitSpec })).stats);
      return { source: 'from-other', stats };
    }

    for (const [i, gitSpec] of gits.entries()) {
      const checkout = insideFolder(dir, gitSpec.checkout_location ?? '', `initializer.prebuild.git[${i}].checkout_location`);
      const owner = await checkoutUser(checkout, user);
      const auth = await gitAuth(gitSpec, this.#secrets, signal);
      const opts: GitOptions = { cwd: checkout, env: auth.env, ...(owner ? { user: owner } : {}), signal };
      const stash = await git(['-c', 'user.name=wsd', '-c', 'user.email=wsd@localhost', 'stash', 'push', '--include-untracked', '-m', 'wsd: prebuild changes'], opts);
      const stashed = !/No local changes to save/.test(stash);
      const shallow = (await git(['rev-parse', '--is-shallow-repository'], opts)).trim() === 'true';
      await this.#switch(gitSpec, opts, auth.args, shallow);
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

  /** Switches to the spec's target; fetches keep a full prebuild clone full (`--depth` only on shallow ones). */
  async #switch(spec: GitSpec, opts: GitOptions, auth: string[], shallow: boolean): Promise<void> {
    const target = spec.clone_taget ?? '';
    const depth = (n: number) => (shallow ? [`--depth=${n}`] : []);
    switch (spec.target_mode ?? 'REMOTE_HEAD') {
      case 'REMOTE_HEAD': {
        const branch = (await git(['symbolic-ref', '--short', '-q', 'HEAD'], opts).catch(() => '')).trim();
        await git([...auth, 'fetch', ...depth(1), 'origin', 'HEAD'], opts);
        await git(branch ? ['checkout', '-B', branch, 'FETCH_HEAD'] : ['checkout', '--detach', 'FETCH_HEAD'], opts);
        break;
      }
      case 'REMOTE_BRANCH':
        await git([...auth, 'fetch', ...depth(1), 'origin', target], opts);
        await git(['checkout', '-B', target, 'FETCH_HEAD'], opts);
        break;
      case 'REMOTE_COMMIT':
        await git([...auth, 'fetch', ...depth(20), 'origin', target], opts);
        await git(['checkout', '--detach', target], opts);
        break;
      case 'LOCAL_BRANCH':
        await git(['checkout', '-B', target], opts);
        break;
    }
  }
}
