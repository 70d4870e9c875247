import type { OperationProgress__Output } from '../api/generated/wsd/v1/OperationProgress.js';
import { formatBytes } from '../config/units.js';

/** Where progress goes: stderr, so that stdout keeps only the command's answer. */
export interface ProgressStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

/** What the display needs of the client: one poll. */
export type ProgressSource = () => Promise<OperationProgress__Output[]>;

export interface ProgressOptions {
  /** The operation kind the call runs (`init`, `backup`, `snapshot`, `dispose`). */
  operation: string;
  source: ProgressSource;
  stream: ProgressStream;
  /** Poll interval; default 250 ms on a terminal, 1 s otherwise. */
  intervalMs?: number;
}

/**
 * Shows the progress of `call` while it runs, polling `GetOperationProgress`: on a terminal one line rewritten in
 * place (phase, bytes, rate, files), otherwise a plain line whenever the phase changes. Once the call succeeds, a
 * last poll gives the summary line (total bytes, files, time, average rate); a failed call leaves the error to its
 * caller. A daemon without the admin API (or any failing poll) only costs the display, never the call.
 */
export async function withProgress<T>(call: Promise<T>, options: ProgressOptions): Promise<T> {
  const { stream, operation } = options;
  const tty = Boolean(stream.isTTY);
  const render = new ProgressRenderer(operation, tty);
  // On a terminal something shows at once; the daemon's first report replaces it.
  const first = render.start();
  if (first) stream.write(first);
  let settled = false;
  let unavailable = false;
  const poll = async (): Promise<OperationProgress__Output | undefined> => {
    if (unavailable) return undefined;
    try {
      return (await options.source()).find((p) => p.operation === operation);
    } catch (error) {
      // UNIMPLEMENTED: a daemon without progress reports. Anything else (NOT_FOUND before an init registers): later.
      if ((error as { code?: number }).code === 12) unavailable = true;
      return undefined;
    }
  };
  const interval = options.intervalMs ?? (tty ? 250 : 1000);
  // The wait between polls ends early when the call settles: the answer is not held back by the display.
  let wake = () => {};
  const woken = new Promise<void>((resolve) => (wake = resolve));
  const loop = (async () => {
    while (!settled) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([new Promise((resolve) => (timer = setTimeout(resolve, interval))), woken]);
      clearTimeout(timer);
      if (settled) break;
      const progress = await poll();
      // A finished one is an earlier operation of this kind: ours has not registered yet.
      if (progress && !progress.done && !settled) {
        const line = render.update(progress);
        if (line !== undefined) stream.write(line);
      }
    }
  })();
  try {
    const result = await call;
    settled = true;
    wake();
    await loop;
    const last = await poll();
    stream.write(render.finish(last?.done ? last : undefined));
    return result;
  } catch (error) {
    settled = true;
    wake();
    await loop;
    stream.write(render.clear());
    throw error;
  }
}

/** Turns progress samples into text; pure, so that the terminal rendering is testable without a terminal. */
export class ProgressRenderer {
  readonly #operation: string;
  readonly #tty: boolean;
  #shown = false;
  #lastPhase: string | undefined;
  #previous: OperationProgress__Output | undefined;

  constructor(operation: string, tty: boolean) {
    this.#operation = operation;
    this.#tty = tty;
  }

  /** The line shown before the first report (on a terminal only). */
  start(): string | undefined {
    if (!this.#tty) return undefined;
    this.#shown = true;
    return `\r\x1b[K${this.#operation}: starting`;
  }

  /** Text for a running sample: on a terminal the rewritten line; otherwise a line when the phase changed. */
  update(progress: OperationProgress__Output): string | undefined {
    const rate = this.#rate(progress);
    this.#previous = progress;
    const line = `${this.#operation}: ${progress.phase}${counts(progress)}${rate ? `, ${formatBytes(rate)}/s` : ''}`;
    if (this.#tty) {
      this.#shown = true;
      return `\r\x1b[K${line}`;
    }
    if (progress.phase === this.#lastPhase) return undefined;
    this.#lastPhase = progress.phase;
    return `${this.#operation}: ${progress.phase}\n`;
  }

  /** The summary line of a finished operation (or only the end of the rewritten line when nothing is known). */
  finish(progress: OperationProgress__Output | undefined): string {
    const end = this.clear();
    if (!progress) return end;
    const seconds = Math.max(0, (Date.parse(progress.updated_at) - Date.parse(progress.started_at)) / 1000);
    const rate = seconds > 0 && progress.bytes > 0 ? `, ${formatBytes(progress.bytes / seconds)}/s` : '';
    return `${end}${this.#operation}: done${counts({ ...progress, total_bytes: 0 })} in ${seconds.toFixed(1)}s${rate}\n`;
  }

  /** Erases the rewritten line on a terminal. */
  clear(): string {
    if (!this.#shown) return '';
    this.#shown = false;
    return '\r\x1b[K';
  }

  /** Bytes per second between the last two samples of the same phase, by the daemon's clock. */
  #rate(progress: OperationProgress__Output): number | undefined {
    const before = this.#previous;
    if (!before || before.phase !== progress.phase || progress.bytes <= before.bytes) return undefined;
    const seconds = (Date.parse(progress.updated_at) - Date.parse(before.updated_at)) / 1000;
    return seconds > 0 ? (progress.bytes - before.bytes) / seconds : undefined;
  }
}

function counts(progress: Pick<OperationProgress__Output, 'bytes' | 'total_bytes' | 'files'>): string {
  const parts: string[] = [];
  if (progress.bytes > 0) {
    const total = progress.total_bytes > 0 ? ` of ${formatBytes(progress.total_bytes)} (${Math.floor((100 * progress.bytes) / progress.total_bytes)}%)` : '';
    parts.push(`${formatBytes(progress.bytes)}${total}`);
  }
  if (progress.files > 0) parts.push(`${progress.files} ${progress.files === 1 ? 'file' : 'files'}`);
  return parts.length ? `, ${parts.join(', ')}` : '';
}

