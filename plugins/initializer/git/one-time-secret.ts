import { WsdError } from '../../../core/errors.js';

/**
 * Fetches `user:password` from a one-time-secret URL. The URL works once, so the answer is cached per URL for this
 * process (a retried clone must not fetch it again); fetching itself is retried on transient failures.
 */
export class OneTimeSecrets {
  readonly #cache = new Map<string, Promise<{ user: string; password: string }>>();

  constructor(private readonly options: { attempts: number; delayMs: number } = { attempts: 20, delayMs: 500 }) {}

  get(url: string, signal?: AbortSignal): Promise<{ user: string; password: string }> {
    let pending = this.#cache.get(url);
    if (!pending) {
      pending = this.#fetch(url, signal);
      this.#cache.set(url, pending);
      pending.catch(() => this.#cache.delete(url));
    }
    return pending;
  }

  async #fetch(url: string, signal?: AbortSignal): Promise<{ user: string; password: string }> {
    let lastError = '';
    for (let attempt = 0; attempt < this.options.attempts; attempt++) {
      signal?.throwIfAborted();
      try {
        const response = await fetch(url, signal ? { signal } : {});
        const text = (await response.text()).trim();
        if (response.ok) {
          const colon = text.indexOf(':');
          if (colon <= 0) throw new WsdError('FAILED_PRECONDITION', 'auth_ots answer is not user:password', { field: 'initializer.git.config.auth_ots' });
          return { user: text.slice(0, colon), password: text.slice(colon + 1) };
        }
        lastError = `HTTP ${response.status}`;
        if (response.status >= 400 && response.status < 500 && response.status !== 429) break; // used up or wrong
      } catch (error) {
        if (error instanceof WsdError) throw error;
        lastError = (error as Error).message;
      }
      await new Promise((resolve) => setTimeout(resolve, this.options.delayMs));
    }
    throw new WsdError('FAILED_PRECONDITION', `cannot fetch the git credentials from auth_ots: ${lastError}`, { field: 'initializer.git.config.auth_ots' });
  }
}
