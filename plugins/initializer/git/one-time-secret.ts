import { AddressPolicy, guardedGet, isWsdError, retry, transientHttpStatus, WsdError } from '../../../core/plugin-api.js';

/**
 * Fetches `user:password` from a one-time-secret URL. The URL works once, so the answer is cached per URL for this
 * process (a retried clone must not fetch it again); fetching itself is retried on transient failures.
 */
export class OneTimeSecrets {
  readonly #cache = new Map<string, Promise<{ user: string; password: string }>>();

  /**
   * `networks`: where the secret may be fetched from (the git policy's networks: by default no loopback, no cloud
   * metadata address — the answer is handed to git as credentials for a remote the caller chose).
   */
  constructor(private readonly options: { attempts: number; delayMs: number; networks?: AddressPolicy } = { attempts: 20, delayMs: 500 }) {}

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
    const field = 'initializer.git.config.auth_ots';
    try {
      return await retry(
        async () => {
          const response = await guardedGet(url, {
            policy: this.options.networks ?? new AddressPolicy(),
            what: 'git credentials (initializers.git.deniedNetworks)',
            field,
            ...(signal ? { signal } : {}),
          });
          const text = response.body.trim();
          // A 4xx other than 429 means used up or wrong: asking again cannot help.
          if (response.status < 200 || response.status > 299) {
            throw new WsdError(transientHttpStatus(response.status) ? 'UNAVAILABLE' : 'FAILED_PRECONDITION', `HTTP ${response.status}`);
          }
          const colon = text.indexOf(':');
          if (colon <= 0) throw new WsdError('FAILED_PRECONDITION', 'the answer is not user:password');
          return { user: text.slice(0, colon), password: text.slice(colon + 1) };
        },
        { attempts: this.options.attempts, initialDelayMs: this.options.delayMs, factor: 1, ...(signal ? { signal } : {}) },
      );
    } catch (error) {
      if (signal?.aborted) throw error;
      if (isWsdError(error, 'PERMISSION_DENIED') || isWsdError(error, 'INVALID_ARGUMENT')) throw error;
      throw new WsdError('FAILED_PRECONDITION', `cannot fetch the git credentials from auth_ots: ${(error as Error).message}`, { field });
    }
  }
}
