import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { filesUnder } from './docker-context.js';
import { aptInstalledPackages, copySteps, finalWorkdir, runCommands, stageNamed, type DockerStage } from './dockerfile.js';
import { debianPackageOf, essentialDebianPackages } from './spawned-programs.js';

/** What the checks read besides the Dockerfile: the repository root and the files `docker build` would send. */
export interface DockerBuildInput {
  root: string;
  stages: DockerStage[];
  context: ReadonlySet<string>;
}

const where = (line: number) => `Dockerfile line ${line}`;
/** Test and benchmark sources: none of them may reach a stage whose output the runtime stage takes. */
const isTestOrBenchmark = (file: string) => /^(test|bench)\//.test(file) || /\.(test|bench)\.[cm]?[jt]sx?$/.test(file) || /(^|\/)__tests__\//.test(file);

/**
 * Where a stage's COPY sources land (absolute paths). A context source is a folder when the context holds files
 * below it; a source from another stage when it has no file extension (`/src/dist`).
 */
function landedPaths(stage: DockerStage, context: ReadonlySet<string> = new Set()): string[] {
  return copySteps(stage).flatMap((step) =>
    step.sources.map((source) => {
      const clean = path.posix.normalize(source).replace(/^\.\/|\/+$/g, '');
      const folder = step.from === undefined ? !context.has(clean) : !path.posix.extname(source);
      return step.destinationOf(source, folder);
    }),
  );
}

/** Every COPY source exists: in the build context (so not excluded by .dockerignore), or in the stage it names. */
export function copySourceProblems({ root, stages, context }: DockerBuildInput): string[] {
  const problems: string[] = [];
  for (const stage of stages) {
    for (const step of copySteps(stage)) {
      const at = where(step.instruction.line);
      for (const source of step.sources) {
        if (/[*?[]/.test(source)) {
          problems.push(`${at}: ${source}: wildcards are not supported by this check`);
          continue;
        }
        if (step.from === undefined) {
          if (filesUnder(context, source).length > 0) continue;
          problems.push(existsSync(path.join(root, source)) ? `${at}: ${source} is excluded from the build context by .dockerignore` : `${at}: ${source} does not exist in the repository`);
          continue;
        }
        const from = stageNamed(stages, step.from);
        if (!from || from.index >= stage.index) {
          problems.push(`${at}: --from=${step.from} names no earlier stage`);
          continue;
        }
        const produced = producedPaths({ root, stages, context }, from);
        if (!path.posix.isAbsolute(source) || !produced.some((p) => source === p || source.startsWith(`${p}/`))) {
          problems.push(`${at}: ${source} is not made by stage ${step.from} (it makes ${produced.join(', ')})`);
        }
      }
    }
  }
  return problems;
}

/**
 * The absolute paths a stage fills: its COPY destinations, node_modules where it runs `npm ci`, and the compiler's
 * output folder (tsconfig's outDir) where it runs `npm run build`, plus whatever the stage it starts from made.
 */
export function producedPaths({ root, stages, context }: DockerBuildInput, stage: DockerStage): string[] {
  const base = stageNamed(stages, stage.base);
  const produced = base && base.index < stage.index ? producedPaths({ root, stages, context }, base) : [];
  const workdir = finalWorkdir(stage);
  produced.push(...landedPaths(stage, context));
  for (const command of runCommands(stage)) {
    if (/\bnpm (ci|install|i)\b/.test(command)) produced.push(path.posix.join(workdir, 'node_modules'));
    if (/\bnpm run build\b/.test(command)) {
      const { compilerOptions } = JSON.parse(readFileSync(path.join(root, 'tsconfig.json'), 'utf8')) as { compilerOptions: { outDir: string } };
      produced.push(path.posix.join(workdir, compilerOptions.outDir));
    }
  }
  return produced;
}

/**
 * The runtime stage (the last) holds production dependencies only: its node_modules come from `npm ci --omit=dev`,
 * in the stage itself or in the stage it copies node_modules from (or are pruned with `npm prune --omit=dev` there).
 */
export function productionDependencyProblems({ stages }: DockerBuildInput): string[] {
  const runtime = stages.at(-1)!;
  const problems: string[] = [];
  const devState = (stage: DockerStage): 'none' | 'production' | 'with-dev' => {
    let state: 'none' | 'production' | 'with-dev' = 'none';
    for (const command of runCommands(stage)) {
      for (const segment of command.split(/&&|;/).map((s) => s.trim())) {
        if (/^npm (ci|install|i)\b/.test(segment)) state = /--omit[= ]dev\b|--production\b|--only[= ]prod/.test(segment) ? 'production' : 'with-dev';
        if (/^npm prune\b/.test(segment) && /--omit[= ]dev\b|--production\b/.test(segment) && state !== 'none') state = 'production';
      }
    }
    return state;
  };
  let found = devState(runtime) !== 'none';
  if (devState(runtime) === 'with-dev') problems.push('the runtime stage installs dependencies without --omit=dev');
  for (const step of copySteps(runtime)) {
    if (step.from === undefined) continue;
    const from = stageNamed(stages, step.from);
    if (!from) continue;
    const modules = path.posix.join(finalWorkdir(from), 'node_modules');
    for (const source of step.sources) {
      const clean = path.posix.normalize(source).replace(/\/+$/, '') || '/';
      if (!(modules === clean || modules.startsWith(clean === '/' ? '/' : `${clean}/`))) continue;
      found = true;
      if (devState(from) !== 'production') problems.push(`${where(step.instruction.line)}: ${source} from stage ${step.from} carries its development dependencies`);
    }
  }
  if (!found) problems.push('the runtime stage gets no node_modules (npm ci --omit=dev, or a copy from a stage that ran it)');
  return problems;
}

/**
 * With an install-time script in package.json (e.g. a `prepare` that builds), every `npm ci`/`npm install` passes --ignore-scripts: in the
 * build stage the sources are not there yet, in the runtime stage the compiler is not.
 */
export function installScriptProblems({ root, stages }: DockerBuildInput): string[] {
  const { scripts } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  const hook = ['preinstall', 'install', 'postinstall', 'prepare'].find((name) => scripts?.[name]);
  if (!hook) return [];
  return stages.flatMap((stage) =>
    stage.instructions
      .filter((i) => i.keyword === 'RUN')
      .flatMap((i) => (i.execForm ? i.args.join(' ') : i.args[0]!).split(/&&|;/).map((segment) => ({ segment: segment.trim(), line: i.line })))
      .filter(({ segment }) => /^npm (ci|install|i)\b/.test(segment) && !/--ignore-scripts\b/.test(segment))
      .map(({ segment, line }) => `${where(line)}: ${segment} runs package.json's ${hook} (${scripts![hook]}): add --ignore-scripts`),
  );
}

/**
 * No compiled tests or benchmarks in the runtime stage: no stage whose output it copies (nor the runtime stage
 * itself) receives test or benchmark sources from the build context, and no copied path names a test folder.
 */
export function testCodeProblems({ stages, context }: DockerBuildInput): string[] {
  const runtime = stages.at(-1)!;
  const problems: string[] = [];
  const feeding = new Set<DockerStage>([runtime]);
  for (const step of copySteps(runtime)) {
    const from = step.from === undefined ? undefined : stageNamed(stages, step.from);
    if (from) feeding.add(from);
    for (const source of step.from === undefined ? [] : step.sources) {
      if (/(^|\/)(test|tests|bench|__tests__)(\/|$)/.test(source)) problems.push(`${where(step.instruction.line)}: copies ${source} into the runtime stage`);
    }
  }
  for (const stage of feeding) {
    for (const step of copySteps(stage)) {
      if (step.from !== undefined) continue;
      const tests = step.sources.flatMap((source) => filesUnder(context, source)).filter(isTestOrBenchmark);
      if (tests.length > 0) {
        problems.push(`${where(step.instruction.line)}: stage ${stage.name ?? stage.index} receives test or benchmark sources, which would end up in the image: ${tests.slice(0, 5).join(', ')}${tests.length > 5 ? `, … (${tests.length})` : ''}`);
      }
    }
  }
  return problems;
}

/** Everything the published package holds (package.json `files`, and package.json) is in the runtime's WORKDIR. */
export function packageContentProblems({ root, stages, context }: DockerBuildInput): string[] {
  const runtime = stages.at(-1)!;
  const { files } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { files: string[] };
  const workdir = finalWorkdir(runtime);
  const landed = new Set(landedPaths(runtime, context));
  return ['package.json', ...files].filter((entry) => !landed.has(path.posix.join(workdir, entry))).map((entry) => `the runtime stage lacks ${entry} in ${workdir}`);
}

/**
 * Each program the daemon runs, and the entrypoint's first program, is installed in the runtime stage: by its
 * `apt-get install`, as an Essential package of the Debian base image, or copied to that path.
 */
export function programProblems({ stages, context }: DockerBuildInput, programs: ReadonlyMap<string, readonly string[]>): string[] {
  const runtime = stages.at(-1)!;
  const installed = aptInstalledPackages(runtime);
  const copiedTo = new Set(landedPaths(runtime, context));
  const problems: string[] = [];
  const check = (program: string, usedBy: string) => {
    const pkg = debianPackageOf[program];
    if (!pkg) problems.push(`${program} (${usedBy}): add the Debian package that provides it to debianPackageOf in test/deploy/spawned-programs.ts, and install it`);
    else if (!installed.has(pkg) && !essentialDebianPackages.has(pkg)) problems.push(`${program} (${usedBy}) is not installed: add ${pkg} to the runtime stage's apt-get install`);
  };
  for (const [program, sites] of programs) check(program, sites.join(', '));
  const entrypoint = runtime.instructions.filter((i) => i.keyword === 'ENTRYPOINT').at(-1);
  if (!entrypoint?.execForm) problems.push('the runtime stage needs an exec-form ENTRYPOINT (a shell form would not pass signals on)');
  else if (!copiedTo.has(entrypoint.args[0]!)) check(path.posix.basename(entrypoint.args[0]!), 'ENTRYPOINT');
  for (const arg of entrypoint?.args.slice(1) ?? []) {
    if (arg.startsWith('/') && !copiedTo.has(arg) && !debianPackageOf[path.posix.basename(arg)]) problems.push(`ENTRYPOINT runs ${arg}, which the runtime stage neither installs nor copies`);
  }
  return problems;
}

/**
 * The runtime stage's `npm ci --omit=dev` is enough: no source the image compiles imports a package outside
 * package.json `dependencies` at run time (type-only imports are erased, so they may use devDependencies).
 */
export function runtimeImportProblems({ root, stages, context }: DockerBuildInput): string[] {
  const { dependencies } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const compiled = new Set(stages.flatMap((stage) => copySteps(stage).filter((s) => s.from === undefined).flatMap((s) => s.sources.flatMap((src) => filesUnder(context, src)))));
  const problems: string[] = [];
  for (const file of [...compiled].filter((f) => /\.ts$/.test(f) && !/\.d\.ts$/.test(f)).sort()) {
    const source = ts.createSourceFile(file, readFileSync(path.join(root, file), 'utf8'), ts.ScriptTarget.ES2022, true);
    const check = (specifier: string, node: ts.Node) => {
      if (specifier.startsWith('.') || specifier.startsWith('node:')) return;
      const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;
      if (!Object.hasOwn(dependencies, name)) problems.push(`${file}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1} imports ${specifier}, which is not among package.json dependencies`);
    };
    const visit = (node: ts.Node) => {
      if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
        const typeOnly = ts.isImportDeclaration(node) ? node.importClause?.isTypeOnly === true : node.isTypeOnly;
        if (!typeOnly) check(node.moduleSpecifier.text, node);
      } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
        check(node.arguments[0].text, node);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return problems;
}
