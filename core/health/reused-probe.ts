/**
 * A probe whose answer is reused for `intervalMs`: readiness asks every few seconds, and a probe may cost commands or
 * billed requests. The answer is kept as a promise, so callers arriving while a probe runs share it. The clock is
 * injectable for tests.
 */
export function reusedProbe<T>(intervalMs: number, probe: () => Promise<T>, now: () => number = Date.now): () => Promise<T> {
  let last: { at: number; answer: Promise<T> } | undefined;
  return () => {
    const at = now();
    if (!last || at - last.at >= intervalMs) last = { at, answer: probe() };
    return last.answer;
  };
}
