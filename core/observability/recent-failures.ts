import { scrubSecrets } from './redact.js';

/** One operation that failed, as the status page lists it. */
export interface FailedOperation {
  /** ISO 8601. */
  time: string;
  workspaceId: string;
  /** `init`, `backup`, `periodic backup`, `snapshot`, `dispose`. */
  operation: string;
  /** The WsdError code (`UNAVAILABLE`, `DATA_LOSS`, ...). */
  code: string;
  /** The error text with secrets scrubbed. */
  error: string;
}

/** How many failures are kept unless told otherwise: a screenful, and a few KB each at most. */
export const defaultFailureCapacity = 50;

/**
 * The last few failed operations on this node, newest first, for operators (the status page). Bounded, in memory
 * only: the log has the full history; this answers "what went wrong lately" at a glance. Error texts are scrubbed
 * here, once, so nothing that reads the list can show a token a failed request quoted.
 */
export class RecentFailures {
  readonly #capacity: number;
  readonly #entries: FailedOperation[] = [];

  constructor(capacity = defaultFailureCapacity) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.#capacity = capacity;
  }

  record(failure: { workspaceId: string; operation: string; code: string; message: string; time?: Date }): void {
    this.#entries.unshift({
      time: (failure.time ?? new Date()).toISOString(),
      workspaceId: failure.workspaceId,
      operation: failure.operation,
      code: failure.code,
      error: scrubSecrets(failure.message),
    });
    if (this.#entries.length > this.#capacity) this.#entries.length = this.#capacity;
  }

  /** Newest first; a copy. */
  list(): FailedOperation[] {
    return this.#entries.map((entry) => ({ ...entry }));
  }
}
