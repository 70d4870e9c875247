import path from 'node:path';

/** One Dockerfile instruction, continuation lines joined. */
export interface DockerInstruction {
  /** Upper case: FROM, COPY, RUN, ... */
  keyword: string;
  /** Leading `--name=value` options (`--from=build` → from: build); a bare `--link` maps to ''. */
  flags: Map<string, string>;
  /** Exec form: the JSON array. Shell form: the words (for RUN, the one command line). */
  args: string[];
  execForm: boolean;
  /** Line of the keyword, 1-based. */
  line: number;
}

export interface DockerStage {
  index: number;
  /** `AS <name>`, if any. */
  name?: string;
  /** The image (or earlier stage) it starts from. */
  base: string;
  instructions: DockerInstruction[];
}

/**
 * Parses the Dockerfile subset wsd uses: FROM … AS, COPY [--from=…], RUN, ENV, WORKDIR, EXPOSE, ENTRYPOINT, CMD,
 * with `\` continuations and comments. What it does not understand (a custom escape character, heredocs, quoted
 * words) is refused, so a test never passes by misreading the file.
 */
export function parseDockerfile(text: string): DockerStage[] {
  const stages: DockerStage[] = [];
  const lines = text.split('\n');
  let inDirectives = true;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) {
      const directive = /^#\s*([a-z]+)\s*=\s*(\S+)\s*$/i.exec(trimmed);
      if (inDirectives && directive?.[1]!.toLowerCase() === 'escape' && directive[2] !== '\\') {
        throw new Error(`Dockerfile line ${i + 1}: escape=${directive[2]} is not supported by this parser`);
      }
      if (trimmed !== '' && !directive) inDirectives = false;
      continue;
    }
    inDirectives = false;
    const start = i;
    let logical = '';
    let line = raw;
    // A trailing backslash continues the instruction; comment and empty lines inside it are dropped (as Docker does).
    while (/\\\s*$/.test(line)) {
      logical += line.replace(/\\\s*$/, '');
      do i++;
      while (i < lines.length && (lines[i]!.trim() === '' || lines[i]!.trim().startsWith('#')));
      if (i >= lines.length) throw new Error(`Dockerfile line ${start + 1}: continuation at the end of the file`);
      line = lines[i]!;
    }
    logical += line;
    const instruction = parseInstruction(logical.trim(), start + 1);
    if (instruction.keyword === 'FROM') {
      const [base, as, name, ...rest] = instruction.args;
      if (!base || (as !== undefined && (as.toUpperCase() !== 'AS' || !name)) || rest.length > 0) {
        throw new Error(`Dockerfile line ${start + 1}: FROM <image> [AS <name>] expected`);
      }
      stages.push({ index: stages.length, base, ...(name ? { name } : {}), instructions: [] });
    } else if (stages.length === 0) {
      if (instruction.keyword !== 'ARG') throw new Error(`Dockerfile line ${start + 1}: ${instruction.keyword} before the first FROM`);
    } else {
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  if (stages.length === 0) throw new Error('Dockerfile: no FROM');
  return stages;
}

function parseInstruction(text: string, line: number): DockerInstruction {
  const keyword = /^\S+/.exec(text)![0].toUpperCase();
  let rest = text.slice(keyword.length).trim();
  if (/<<-?["']?[A-Za-z_]/.test(rest) && (keyword === 'RUN' || keyword === 'COPY')) {
    throw new Error(`Dockerfile line ${line}: heredocs are not supported by this parser`);
  }
  const flags = new Map<string, string>();
  if (['FROM', 'COPY', 'ADD', 'RUN'].includes(keyword)) {
    for (let flag = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest); flag; flag = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest)) {
      flags.set(flag[1]!, flag[2] ?? '');
      rest = rest.slice(flag[0].length);
    }
  }
  if (rest.startsWith('[')) {
    const args = JSON.parse(rest) as unknown;
    if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) throw new Error(`Dockerfile line ${line}: exec form must be a JSON array of strings`);
    return { keyword, flags, args, execForm: true, line };
  }
  if (keyword === 'RUN' || keyword === 'CMD' || keyword === 'ENTRYPOINT') return { keyword, flags, args: [rest], execForm: false, line };
  if (/["']/.test(rest) && keyword !== 'ENV' && keyword !== 'LABEL') throw new Error(`Dockerfile line ${line}: quoted words are not supported by this parser`);
  return { keyword, flags, args: rest.split(/\s+/).filter(Boolean), execForm: false, line };
}

/** A COPY with its sources and the absolute destination path of each, WORKDIR applied. */
export interface CopyStep {
  instruction: DockerInstruction;
  /** The stage name or index given to --from, if any. */
  from?: string;
  sources: string[];
  /** The absolute path `source` lands on: a folder's content goes into the destination, a file into it or onto it. */
  destinationOf(source: string, sourceIsFolder: boolean): string;
}

/** The COPY instructions of a stage, resolved against the WORKDIR in force at each. */
export function copySteps(stage: DockerStage): CopyStep[] {
  const steps: CopyStep[] = [];
  let workdir = '/';
  for (const instruction of stage.instructions) {
    if (instruction.keyword === 'WORKDIR') workdir = path.posix.resolve(workdir, instruction.args[0]!);
    if (instruction.keyword !== 'COPY' && instruction.keyword !== 'ADD') continue;
    if (instruction.keyword === 'ADD') throw new Error(`Dockerfile line ${instruction.line}: use COPY (ADD fetches URLs and unpacks archives)`);
    const sources = instruction.args.slice(0, -1);
    const destination = instruction.args.at(-1)!;
    const base = workdir;
    const into = destination.endsWith('/') || sources.length > 1 || destination === '.';
    steps.push({
      instruction,
      ...(instruction.flags.has('from') ? { from: instruction.flags.get('from')! } : {}),
      sources,
      destinationOf: (source, sourceIsFolder) => {
        const target = path.posix.resolve(base, destination);
        return sourceIsFolder || !into ? target : path.posix.join(target, path.posix.basename(source));
      },
    });
  }
  return steps;
}

/** The WORKDIR in force at the end of a stage. */
export function finalWorkdir(stage: DockerStage): string {
  return stage.instructions.filter((i) => i.keyword === 'WORKDIR').reduce((dir, i) => path.posix.resolve(dir, i.args[0]!), '/');
}

/** The shell command lines of a stage's RUN instructions. */
export function runCommands(stage: DockerStage): string[] {
  return stage.instructions.filter((i) => i.keyword === 'RUN').map((i) => (i.execForm ? i.args.join(' ') : i.args[0]!));
}

/** Packages named by `apt-get install` in a stage (options left out). */
export function aptInstalledPackages(stage: DockerStage): Set<string> {
  const packages = new Set<string>();
  for (const command of runCommands(stage)) {
    for (const segment of command.split(/&&|;|\|\|?/)) {
      const words = segment.trim().split(/\s+/);
      const at = words.findIndex((w, i) => (w === 'apt-get' || w === 'apt') && words[i + 1] === 'install');
      if (at < 0) continue;
      for (const word of words.slice(at + 2)) if (!word.startsWith('-')) packages.add(word.replace(/=.*$/, ''));
    }
  }
  return packages;
}

/** The stage `--from` names: by `AS` name or by index. */
export function stageNamed(stages: readonly DockerStage[], ref: string): DockerStage | undefined {
  return stages.find((s) => s.name === ref) ?? (/^\d+$/.test(ref) ? stages[Number(ref)] : undefined);
}
