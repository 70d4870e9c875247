import { WsdError } from '../errors.js';

/** One problem found in a config or plugin set, at a dotted path (`storage.local.root`). */
export interface ConfigIssue {
  path: string;
  message: string;
}

/**
 * Everything wrong with a config at once, so an operator fixes all of it in one go.
 * The message lists each issue as `path: reason` on its own line.
 */
export class ConfigError extends WsdError {
  readonly issues: readonly ConfigIssue[];
  readonly source: string | undefined;

  constructor(issues: readonly ConfigIssue[], source?: string) {
    const head = source ? `invalid config ${source}` : 'invalid config';
    super('INVALID_ARGUMENT', `${head}:\n${issues.map((i) => `  - ${formatIssue(i)}`).join('\n')}`, {
      field: issues[0]?.path,
    });
    this.issues = issues;
    this.source = source;
  }
}

export function formatIssue(issue: ConfigIssue): string {
  return issue.path ? `${issue.path}: ${issue.message}` : issue.message;
}

/** Joins path segments the way config paths are shown: `a.b[2].c`. */
export function joinPath(base: string, segments: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }>): string {
  let out = base;
  for (const raw of segments) {
    const segment = typeof raw === 'object' && raw !== null ? raw.key : raw;
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out ? `.${String(segment)}` : String(segment);
  }
  return out;
}

/**
 * Turns Standard Schema issues (zod's included) into config issues under `base`. Zod reports unknown keys as one
 * issue on the parent; they are split so each unknown key gets its own full path.
 */
export function issuesAt(
  base: string,
  issues: ReadonlyArray<{ message: string; path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> }>,
): ConfigIssue[] {
  return issues.flatMap((issue) => {
    const at = joinPath(base, issue.path ?? []);
    const keys = (issue as { code?: unknown; keys?: unknown }).code === 'unrecognized_keys' ? (issue as { keys?: unknown }).keys : undefined;
    if (Array.isArray(keys) && keys.length > 0) {
      return keys.map((key) => ({ path: joinPath(at, [String(key)]), message: 'unknown key' }));
    }
    return [{ path: at, message: issue.message }];
  });
}
