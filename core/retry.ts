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
   * Randomize each wait to between half and all of its nominal length (default false), so that many clients failing
   * at once (a storage outage seen by every node) do not retry in lockstep.
   */
  jitter?: boolean;
  /** Which failures are worth another try (default: a transient WsdError — UNAVAILABLE, DEADLINE_EXCEEDED). */
  retryable?: (error: unknown) => boolean;
  /** Called before each wait, e.g. to log or to clean up a partial result. */
  onRetry?: (error: unknown, info: { attempt: number; delayMs: number }) => void | Promise<void>;
  /** Checked before each try; a wait in between ends early when it aborts. */
  signal?: AbortSignal;
}

/**
 * Runs `fn` until it succeeds, fails with a non-retryable error, or attempts / deadline run out; then the last
 * error is thrown as it is. The one backoff loop of wsd (git, downloads, one-time secrets, periodic backups).
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const retryable = options.retryable ?? ((error: unknown) => isTransient(error));
  const deadline = options.deadlineMs === undefined ? Infinity : Date.now() + options.deadlineMs;
  const maxDelay = options.maxDelayMs ?? Infinity;
  for (let attempt = 1, nominal = options.initialDelayMs; ; attempt++, nominal = Math.min(maxDelay, nominal * (options.factor ?? 2))) {
    options.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (error) {
      const delay = Math.min(maxDelay, options.jitter ? nominal * (0.5 + Math.random() / 2) : nominal);
      const outOfTries = options.attempts !== undefined && attempt >= options.attempts;
      if (!retryable(error) || outOfTries || Date.now() + delay > deadline) throw error;
      await options.onRetry?.(error, { attempt, delayMs: delay });
      await wait(delay, options.signal);
    }
  }
}

/** A wait between tries: never keeps a stopping process alive on its own, and ends at once when `signal` aborts. */
async function wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted();
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal?.addEventListener('abort', done, { once: true });
  });
  signal?.throwIfAborted();
}

/** HTTP answers worth another try: server errors and rate limiting. */
export function transientHttpStatus(status: number): boolean {
  return status >= 500 || status === 429;
}
