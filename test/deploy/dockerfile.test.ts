// The Dockerfile is never built on this machine kind (no Docker engine), so this test keeps it honest by reading it:
// COPY sources, production dependencies only, no compiled tests, every program the daemon runs installed, and the
// entrypoint's behaviour (run for real with sh).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { packageRoot } from '../../core/config/package-root.js';
import { runWsd, startDaemonProcess } from '../kit/daemon-process.js';
import { tempDir } from '../kit/temp-dir.js';
import { buildContextFiles, DockerIgnore, filesUnder } from './docker-context.js';
import { copySteps, finalWorkdir, parseDockerfile, type DockerStage } from './dockerfile.js';
import {
  copySourceProblems,
  installScriptProblems,
  packageContentProblems,
  productionDependencyProblems,
  programProblems,
  runtimeImportProblems,
  testCodeProblems,
  type DockerBuildInput,
} from './dockerfile-checks.js';
import { spawnedPrograms } from './spawned-programs.js';

const root = packageRoot();
const dockerfileText = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
const context = buildContextFiles(root);
const input = (text = dockerfileText, files: ReadonlySet<string> = context): DockerBuildInput => ({ root, stages: parseDockerfile(text), context: files });
const runtimeStage = (): DockerStage => parseDockerfile(dockerfileText).at(-1)!;
/** `Dockerfile line N` of the line that reads `instruction` in `text`. */
const at = (text: string, instruction: string) => `Dockerfile line ${text.split('\n').indexOf(instruction) + 1}`;

describe('Dockerfile parser', () => {
  it('joins continuation lines (dropping comments inside them), reads flags, stages and the exec form', () => {
    const stages = parseDockerfile(
      ['# syntax=docker/dockerfile:1', 'FROM node:20 AS build', 'RUN a \\', '  # a comment inside', '    && b', 'FROM node:20', 'COPY --from=build /src/dist dist', 'ENTRYPOINT ["/usr/bin/tini", "--"]', ''].join('\n'),
    );
    assert.deepEqual(stages.map((s) => [s.name, s.base]), [['build', 'node:20'], [undefined, 'node:20']]);
    assert.deepEqual(stages[0]!.instructions[0]!.args, ['a     && b']);
    const copy = stages[1]!.instructions[0]!;
    assert.deepEqual([copy.keyword, copy.flags.get('from'), copy.args, copy.line], ['COPY', 'build', ['/src/dist', 'dist'], 7]);
    assert.deepEqual(stages[1]!.instructions[1]!, { keyword: 'ENTRYPOINT', flags: new Map(), args: ['/usr/bin/tini', '--'], execForm: true, line: 8 });
  });

  it('refuses what it does not understand instead of misreading it', () => {
    assert.throws(() => parseDockerfile('FROM x\nRUN cat <<EOF\nhi\nEOF\n'), /heredocs are not supported/);
    assert.throws(() => parseDockerfile('# escape=`\nFROM x\n'), /escape=` is not supported/);
    assert.throws(() => parseDockerfile('COPY a b\n'), /COPY before the first FROM/);
    assert.throws(() => parseDockerfile('FROM x\nRUN a \\\n'), /continuation at the end of the file/);
  });
});

describe('.dockerignore', () => {
  it('keeps wsd-data/, node_modules, dist, .cache and .git out of the build context, at any depth', () => {
    const ignore = DockerIgnore.read(root);
    for (const file of ['wsd-data/state/x.json', 'core/wsd-data/storage/k', 'node_modules/zod/package.json', 'dist/core/daemon.js', '.cache/x', '.git/HEAD', 'plugins/x/node_modules/y.js']) {
      assert.ok(ignore.excludes(file), `${file} must not be sent to docker build`);
    }
    assert.deepEqual([...context].filter((f) => /(^|\/)(wsd-data|node_modules|dist|\.cache|\.git)\//.test(f)), []);
    assert.ok(context.has('core/daemon.ts') && context.has('package-lock.json'), 'the sources themselves are in the context');
  });

  it('matches patterns the way Docker does', () => {
    const ignore = new DockerIgnore('*\n!core/\n**/*.test.ts\n!keep/me.txt\n/abs/\n');
    assert.ok(ignore.excludes('README.md'));
    assert.ok(ignore.excludes('docs/a.md'), 'a folder matched by * is left out with its content');
    assert.ok(!ignore.excludes('core/a/b.ts'), '! re-includes a folder and what is in it');
    assert.ok(ignore.excludes('core/a/b.test.ts'), 'the last matching line wins; ** spans folders');
    assert.ok(ignore.excludes('core/b.test.ts'), '**/ also matches no folder at all');
    assert.ok(!ignore.excludes('keep/me.txt') && ignore.excludes('keep/other.txt'));
    assert.ok(ignore.mayIncludeBelow('keep') && !ignore.mayIncludeBelow('docs'));
    assert.throws(() => new DockerIgnore('[ab]\n'), /character classes/);
  });
});

describe('Dockerfile', () => {
  it('copies only sources that exist in the build context, and from stages that make them', () => {
    assert.deepEqual(copySourceProblems(input()), []);
    const broken = dockerfileText
      .replace('COPY core core', 'COPY core core\nCOPY test test\nCOPY nosuch nosuch')
      .replace('COPY --from=build /src/dist dist', 'COPY --from=build /src/nowhere dist\nCOPY --from=later /x y');
    assert.deepEqual(
      copySourceProblems(input(broken)).map((p) => p.replace(/ \(it makes .*\)$/, '')),
      [
        `${at(broken, 'COPY test test')}: test is excluded from the build context by .dockerignore`,
        `${at(broken, 'COPY nosuch nosuch')}: nosuch does not exist in the repository`,
        `${at(broken, 'COPY --from=build /src/nowhere dist')}: /src/nowhere is not made by stage build`,
        `${at(broken, 'COPY --from=later /x y')}: --from=later names no earlier stage`,
      ],
    );
  });

  it('gives the build stage every file its sources import (the context is a whitelist)', () => {
    const build = parseDockerfile(dockerfileText)[0]!;
    const received = new Set(copySteps(build).flatMap((step) => step.sources.flatMap((source) => filesUnder(context, source))));
    assert.ok(received.has('core/daemon.ts') && received.has('scripts/gen-proto.mjs') && received.has('proto/wsd/v1/admin.proto'));
    const missing: string[] = [];
    for (const file of [...received].filter((f) => f.endsWith('.ts'))) {
      for (const [, specifier] of readFileSync(path.join(root, file), 'utf8').matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)) {
        const target = path.posix.join(path.posix.dirname(file), specifier!).replace(/\.js$/, '.ts');
        // scripts/gen-proto.mjs writes core/api/generated/ during `npm run build`, inside the stage.
        if (!received.has(target) && !target.startsWith('core/api/generated/')) missing.push(`${file} imports ${specifier}`);
      }
    }
    assert.deepEqual(missing, []);
  });

  it('gives the runtime stage production dependencies only', () => {
    assert.deepEqual(productionDependencyProblems(input()), []);
    assert.match(dockerfileText, /npm ci --omit=dev/);
    const withDev = dockerfileText.replace('npm ci --omit=dev', 'npm ci');
    assert.deepEqual(productionDependencyProblems(input(withDev)), ['the runtime stage installs dependencies without --omit=dev']);
    const copiedFromBuild = dockerfileText.replace(/RUN npm ci --omit=dev.*\n/, 'COPY --from=build /src/node_modules node_modules\n');
    assert.deepEqual(productionDependencyProblems(input(copiedFromBuild)), [`${at(copiedFromBuild, 'COPY --from=build /src/node_modules node_modules')}: /src/node_modules from stage build carries its development dependencies`]);
    const pruned = copiedFromBuild.replace('RUN npm run build', 'RUN npm run build && npm prune --omit=dev');
    assert.deepEqual(productionDependencyProblems(input(pruned)), []);
    assert.deepEqual(installScriptProblems(input()), []);
    // The project has no install-time script today; a package.json that gets one (a `prepare` that builds) makes every
    // npm ci without --ignore-scripts a problem.
    const withPrepare = tempDir();
    writeFileSync(path.join(withPrepare, 'package.json'), JSON.stringify({ scripts: { prepare: 'npm run build' } }));
    assert.deepEqual(installScriptProblems({ ...input(dockerfileText.replace('npm ci --omit=dev --ignore-scripts', 'npm ci --omit=dev')), root: withPrepare }), [
      `${at(dockerfileText, 'RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force')}: npm ci --omit=dev --no-audit --no-fund runs package.json's prepare (npm run build): add --ignore-scripts`,
    ]);
  });

  it('needs no development dependency at run time: what the image compiles imports production ones only', () => {
    assert.deepEqual(runtimeImportProblems(input()), []);
    const fake = tempDir();
    mkdirSync(path.join(fake, 'core'));
    writeFileSync(path.join(fake, 'package.json'), JSON.stringify({ dependencies: { zod: '4' } }));
    writeFileSync(
      path.join(fake, 'core', 'a.ts'),
      "import fc from 'fast-check';\nimport type { Node } from 'typescript';\nimport { z } from 'zod/mini';\nconst grpc = await import('@grpc/grpc-js/build/src');\n",
    );
    assert.deepEqual(runtimeImportProblems({ root: fake, stages: parseDockerfile('FROM x\nCOPY core core\n'), context: new Set(['core/a.ts']) }), [
      'core/a.ts:1 imports fast-check, which is not among package.json dependencies',
      'core/a.ts:4 imports @grpc/grpc-js/build/src, which is not among package.json dependencies',
    ]);
  });

  it('puts no compiled tests or benchmarks into the runtime stage', () => {
    assert.deepEqual(testCodeProblems(input()), []);
    // Without .dockerignore the build stage would compile the unit tests that sit beside the code.
    const everything = buildContextFiles(root, new DockerIgnore('node_modules\n.git\n.cache\ndist\n'));
    const problems = testCodeProblems(input(dockerfileText, everything));
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.ok(problems[0]!.startsWith(`${at(dockerfileText, 'COPY plugins plugins')}: stage build receives test or benchmark sources, which would end up in the image: plugins/`), problems[0]);
    const copiesTests = dockerfileText.replace('COPY --from=build /src/dist dist', 'COPY --from=build /src/dist dist\nCOPY --from=build /src/dist/test dist/test');
    assert.deepEqual(testCodeProblems(input(copiesTests)), [`${at(copiesTests, 'COPY --from=build /src/dist/test dist/test')}: copies /src/dist/test into the runtime stage`]);
  });

  it('puts everything the package publishes (package.json files) into the runtime WORKDIR', () => {
    assert.deepEqual(packageContentProblems(input()), []);
    assert.deepEqual(packageContentProblems(input(dockerfileText.replace('COPY proto proto\nCOPY deploy', 'COPY deploy'))), ['the runtime stage lacks proto in /opt/wsd']);
  });

  it('installs every program the daemon runs, found in the sources', () => {
    const { programs, unresolved } = spawnedPrograms(root);
    assert.deepEqual(unresolved, [], 'every spawn names its program literally, or goes through a known wrapper');
    for (const known of ['git', 'tar', 'zstd', 'du', 'ssh']) assert.ok(programs.has(known), `the scan finds ${known}`);
    assert.deepEqual(programProblems(input(), programs), []);
    const withoutZstd = dockerfileText.replace(' tini zstd', ' tini');
    assert.deepEqual(programProblems(input(withoutZstd), programs).map((p) => p.replace(/ \(.*\) /, ' ')), ['zstd is not installed: add zstd to the runtime stage\'s apt-get install']);
    const unknown = programProblems(input(), new Map([['frobnicate', ['plugins/x.ts:1']]]));
    assert.match(unknown[0]!, /^frobnicate \(plugins\/x\.ts:1\): add the Debian package that provides it/);
  });
});

describe('image entrypoint', () => {
  const runtime = runtimeStage();
  const entrypoint = runtime.instructions.filter((i) => i.keyword === 'ENTRYPOINT').at(-1)!.args;
  const cmd = runtime.instructions.filter((i) => i.keyword === 'CMD').at(-1)!.args;
  const scriptStep = copySteps(runtime).find((step) => entrypoint.includes(step.destinationOf(step.sources[0]!, false)))!;
  const script = path.join(root, scriptStep.sources[0]!);
  const scriptText = readFileSync(script, 'utf8');

  it('is the copied script, executable, and looks for wsd where the image puts it', () => {
    assert.deepEqual(entrypoint.slice(0, 2), ['/usr/bin/tini', '--'], 'tini is PID 1: it reaps orphaned grandchildren and passes signals on');
    assert.ok((statSync(script).mode & 0o111) !== 0, `${scriptStep.sources[0]} must be executable`);
    assert.match(scriptText, new RegExp(`wsd_home="\\$\\{WSD_HOME:-${finalWorkdir(runtime)}\\}"`));
    assert.match(scriptText, /\nexec node /, 'exec: the daemon replaces the shell and gets the stop signal itself');
  });

  it('refuses the default command without a mounted config, saying to mount one with TLS', async () => {
    const result = await runWsd(cmd, { launcher: ['sh', script], env: { WSD_HOME: root, WSD_CONFIG_DIR: tempDir() } });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^wsd: no config at .*\/wsd\.yaml\./);
    assert.match(result.stderr, /only over TLS\. Mount a config that sets api\.address and api\.tls/);
    assert.equal(result.stdout, '');
  });

  it('runs the daemon on the mounted config and hands it the stop signal', async () => {
    const configDir = tempDir();
    writeFileSync(path.join(configDir, 'wsd.yaml'), 'dataDir: ./data\nhttp:\n  address: 127.0.0.1:0\napi:\n  address: 127.0.0.1:0\n');
    const daemon = await startDaemonProcess({ launcher: ['sh', script], args: cmd.slice(1), env: { WSD_HOME: root, WSD_CONFIG_DIR: configDir } });
    assert.equal(daemon.logs.find((l) => l.msg === 'starting')?.config, path.join(configDir, 'wsd.yaml'));
    // `wsd run` logs `ready` just before it installs its signal handlers, in the same synchronous step: an answer
    // from the daemon after that line proves the handlers are in place (a SIGTERM right at `ready` can kill it).
    assert.equal((await fetch(`http://${daemon.httpAddress}/healthz`)).status, 200);
    assert.equal(await daemon.stop('SIGTERM'), 0);
    assert.ok(daemon.logs.some((l) => l.msg === 'stopped'));
  });

  it('passes other commands, and run with its own --config, to wsd untouched', async () => {
    const version = await runWsd(['--version'], { launcher: ['sh', script], env: { WSD_HOME: root, WSD_CONFIG_DIR: tempDir() } });
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
    const missing = await runWsd(['run', '--config', '/nonexistent/wsd.yaml'], { launcher: ['sh', script], env: { WSD_HOME: root, WSD_CONFIG_DIR: tempDir() } });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read config \/nonexistent\/wsd\.yaml/);
  });
});
