/**
 * A node:test reporter for tests run inside the test guest (test/kit/guest-tests.ts): one JSON line per finished
 * test or suite, so the host can report each guest case as its own test. Used as
 * `node --test --test-reporter=<this file> --test-reporter-destination=<file>`, beside the spec reporter on stdout.
 */
export interface GuestTestEvent {
  name: string;
  nesting: number;
  suite: boolean;
  status: 'pass' | 'fail' | 'skip' | 'todo';
  /** The skip or todo reason. */
  reason?: string;
  durationMs: number;
  /** For a failure: the error's stack or message (node wraps a test's own error as `cause`). */
  error?: string;
}

interface TestEventData {
  name: string;
  nesting: number;
  skip?: string | boolean;
  todo?: string | boolean;
  details: { duration_ms: number; type?: string; error?: Error & { cause?: unknown } };
}

export default async function* guestTestReporter(source: AsyncIterable<{ type: string; data: unknown }>): AsyncGenerator<string> {
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const data = event.data as TestEventData;
    const reasonOf = (value: string | boolean | undefined) => (typeof value === 'string' ? { reason: value } : {});
    const status: GuestTestEvent['status'] =
      event.type === 'test:fail' ? 'fail' : data.skip !== undefined && data.skip !== false ? 'skip' : data.todo !== undefined && data.todo !== false ? 'todo' : 'pass';
    const cause = data.details.error?.cause ?? data.details.error;
    const line: GuestTestEvent = {
      name: data.name,
      nesting: data.nesting,
      suite: data.details.type === 'suite',
      status,
      ...(status === 'skip' ? reasonOf(data.skip) : status === 'todo' ? reasonOf(data.todo) : {}),
      durationMs: data.details.duration_ms,
      ...(status === 'fail' && cause !== undefined ? { error: cause instanceof Error ? (cause.stack ?? cause.message) : String(cause) } : {}),
    };
    yield `${JSON.stringify(line)}\n`;
  }
}
