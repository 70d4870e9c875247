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
  /** Which failures are worth another try (default: a transient WsdError — UNAVAILABLE, DEADLINE_EXCEEDED). */
  retryable?: (error: unknown) => boolean;
  /** Called before each wait, e.g. to log or to clean up a partial result. */
  onRetry?: (error: unknown, info: { attempt: number; delayMs: number }) => void | Promise<void>;
  signal?: AbortSignal;
}

/**
 * Runs `fn` until it succeeds, fails with a non-retryable error, or attempts / deadline run out; then the last
 * error is thrown as it is. The one backoff loop of wsd (git, downloads, one-time secrets, periodic backups).
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const retryable = options.retryable ?? ((error: unknown) => isTransient(error));
  const deadline = options.deadlineMs === undefined ? Infinity : Date.now() + options.deadlineMs;
  for (let attempt = 1, delay = options.initialDelayMs; ; attempt++, delay *= options.factor ?? 2) {
    options.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (error) {
      const outOfTries = options.attempts !== undefined && attempt >= options.attempts;
      if (!retryable(error) || outOfTries || Date.now() + delay > deadline) throw error;
      await options.onRetry?.(error, { attempt, delayMs: delay });
      // A wait between tries never keeps a stopping process alive on its own.
      await new Promise((resolve) => setTimeout(resolve, delay).unref());
    }
  }
}

/** HTTP answers worth another try: server errors and rate limiting. */
export function transientHttpStatus(status: number): boolean {
  return status >= 500 || status === 429;
}
