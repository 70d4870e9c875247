import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** One line of a .dockerignore file. */
interface IgnoreRule {
  pattern: string;
  exception: boolean;
  regex: RegExp;
}

/**
 * The rules of a `.dockerignore`, matched the way Docker's builder does (moby/patternmatcher): patterns are cleaned
 * paths relative to the context root; `*` and `?` stay within one path segment, `**` spans any number of them; a
 * pattern that matches a folder matches everything in it; `!` re-includes; the last matching line wins.
 * Character classes (`[...]`) and escapes are refused rather than half-supported.
 */
export class DockerIgnore {
  readonly rules: readonly IgnoreRule[];

  constructor(text: string) {
    this.rules = text
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => {
        const exception = line.startsWith('!');
        const pattern = path.posix.normalize((exception ? line.slice(1) : line).trim()).replace(/^\/+|\/+$/g, '');
        if (/[[\]\\]/.test(pattern)) throw new Error(`.dockerignore: ${line}: character classes and escapes are not supported by this parser`);
        return { pattern, exception, regex: patternRegex(pattern) };
      });
  }

  static read(contextDir: string): DockerIgnore {
    let text = '';
    try {
      text = readFileSync(path.join(contextDir, '.dockerignore'), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    return new DockerIgnore(text);
  }

  /** Whether `file` (relative to the context root, `/`-separated) is left out of the build context. */
  excludes(file: string): boolean {
    const candidates = [file];
    for (let parent = path.posix.dirname(file); parent !== '.'; parent = path.posix.dirname(parent)) candidates.push(parent);
    let excluded = false;
    for (const rule of this.rules) {
      if (candidates.some((candidate) => rule.regex.test(candidate))) excluded = !rule.exception;
    }
    return excluded;
  }

  /** Whether some exception could re-include a path below the excluded folder `dir` (else the walk skips it). */
  mayIncludeBelow(dir: string): boolean {
    return this.rules.some((rule) => rule.exception && (rule.pattern.includes('**') || rule.pattern.startsWith(`${dir}/`)));
  }
}

function patternRegex(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i]!;
    if (char === '*' && pattern[i + 1] === '*') {
      // `**/` is any number of whole segments (none included); a trailing `**` is anything.
      if (pattern[i + 2] === '/') {
        source += '(?:.*/)?';
        i += 2;
      } else {
        source += '.*';
        i += 1;
      }
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else source += char.replace(/[.+^${}()|]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/**
 * The files `docker build <contextDir>` sends (paths relative to the context, `/`-separated): everything on disk
 * under `contextDir` that `.dockerignore` does not exclude. Excluded folders are not entered unless an exception
 * could re-include something in them, so node_modules and .git cost nothing. Symlinks count as files, as Docker
 * sends them as links.
 */
export function buildContextFiles(contextDir: string, ignore = DockerIgnore.read(contextDir)): Set<string> {
  const files = new Set<string>();
  const walk = (relative: string) => {
    for (const entry of readdirSync(path.join(contextDir, relative), { withFileTypes: true })) {
      const child = relative ? `${relative}/${entry.name}` : entry.name;
      const isDir = entry.isDirectory() && !lstatSync(path.join(contextDir, child)).isSymbolicLink();
      if (isDir) {
        if (!ignore.excludes(child) || ignore.mayIncludeBelow(child)) walk(child);
      } else if (!ignore.excludes(child)) files.add(child);
    }
  };
  walk('');
  return files;
}

/** The context files a COPY source names: the file itself, or every file below a folder. */
export function filesUnder(context: ReadonlySet<string>, source: string): string[] {
  const clean = path.posix.normalize(source).replace(/^\.?\/+|\/+$/g, '');
  if (clean === '' || clean === '.') return [...context];
  if (context.has(clean)) return [clean];
  return [...context].filter((file) => file.startsWith(`${clean}/`));
}
