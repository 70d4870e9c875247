import { isTransient } from './errors.js';

export interface RetryOptions {
  /** Tries in all (default: unlimited, bounded by `deadlineMs`). */
  attempts?: number;
  /** Stop retrying when the next wait would end after this many ms from the start. */
  deadlineMs?: number;
  /** Wait before the first retry. */
  initialDelayMs: number;
  /** Each wait is the previous one times this (default 2: exponential backoff). */
  factor?: number;
  /** No wait is longer than this (default: unbounded). */
  maxDelayMs?: number;
  /**
   * Randomizes each wait to between `(1 - jitter)` and `1` times its nominal value (0..1, default 0: none), so that
   * clients failing together (a storage outage) do not retry in lockstep.
   */
  jitter?: number;
  /** Which failures are worth another try (default: a transient WsdError — UNAVAILABLE, DEADLINE_EXCEEDED). */
  retryable?: (error: unknown) => boolean;
  /** Called before each wait, e.g. to log or to clean up a partial result. */
  onRetry?: (error: unknown, info: { attempt: number; delayMs: number }) => void | Promise<void>;
  /** Ends the retries: checked before every try, and a wait between tries ends at once (rejecting with its reason). */
  signal?: AbortSignal;
  /**
   * Whether a wait between tries keeps the process alive (default false: it never does on its own). True for an
   * operation someone awaits, such as a storage request: with nothing else pending, the process would otherwise end
   * in the middle of it.
   */
  keepAlive?: boolean;
}

/**
 * Runs `fn` until it succeeds, fails with a non-retryable error, or attempts / deadline run out; then the last
 * error is thrown as it is. The one backoff loop of wsd (git, downloads, one-time secrets, periodic backups, object
 * storage).
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const retryable = options.retryable ?? ((error: unknown) => isTransient(error));
  const deadline = options.deadlineMs === undefined ? Infinity : Date.now() + options.deadlineMs;
  for (let attempt = 1, nominal = options.initialDelayMs; ; attempt++, nominal *= options.factor ?? 2) {
    options.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (error) {
      const outOfTries = options.attempts !== undefined && attempt >= options.attempts;
      const capped = Math.min(nominal, options.maxDelayMs ?? Infinity);
      const delay = Math.round(capped * (1 - (options.jitter ?? 0) * Math.random()));
      if (!retryable(error) || outOfTries || Date.now() + delay > deadline) throw error;
      await options.onRetry?.(error, { attempt, delayMs: delay });
      await wait(delay, options.signal, options.keepAlive ?? false);
    }
  }
}

/** A wait between tries, which ends when `signal` aborts. */
function wait(ms: number, signal: AbortSignal | undefined, keepAlive: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (!keepAlive) timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** HTTP answers worth another try: server errors and rate limiting. */
export function transientHttpStatus(status: number): boolean {
  return status >= 500 || status === 429;
}
