import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { gitProtocols } from '../../plugins/initializer/git/git-policy.js';

/** Functions that start a program named by their first argument. */
const spawningFunctions = new Set(['spawn', 'spawnSync', 'execFile', 'execFileSync', 'exec', 'execSync', 'spawnTracked', 'runCommand']);

/**
 * Files that pass a caller's command on (a wrapper's non-literal first argument): their callers are scanned
 * instead. Anything else that spawns a computed command fails the scan, so no program slips past it.
 */
const forwardingWrappers = new Set(['core/process/child-processes.ts', 'core/process/run-command.ts']);

export interface SpawnedPrograms {
  /** Program name → where it is spawned (`file:line`). */
  programs: Map<string, string[]>;
  /** Calls whose command is not a string literal, outside the known wrappers (`file:line: text`). */
  unresolved: string[];
}

/**
 * Every program the daemon runs, found in the sources of `core/` and `plugins/` (tests left out): the literal
 * first argument of spawn, execFile, spawnTracked and friends, plus what git itself runs for the transports the git
 * initializer can allow (ssh for ssh remotes) and for wsd's credential helper (a shell function, run with sh).
 */
export function spawnedPrograms(root: string): SpawnedPrograms {
  const programs = new Map<string, string[]>();
  const unresolved: string[] = [];
  const add = (program: string, site: string) => programs.set(program, [...(programs.get(program) ?? []), site]);

  for (const file of sourceFiles(root, ['core', 'plugins'])) {
    const text = readFileSync(path.join(root, file), 'utf8');
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
    const visit = (node: ts.Node) => {
      if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && spawningFunctions.has(node.expression.text)) {
        const site = `${file}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
        const command = node.arguments[0];
        if (command && (ts.isStringLiteral(command) || ts.isNoSubstitutionTemplateLiteral(command))) add(command.text.split(/\s+/)[0]!, site);
        else if (!forwardingWrappers.has(file)) unresolved.push(`${site}: ${node.getText(source).slice(0, 80)}`);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }

  if (programs.has('git')) {
    if ((gitProtocols as readonly string[]).includes('ssh')) add('ssh', 'git, for ssh remotes (gitProtocols in plugins/initializer/git/git-policy.ts)');
    add('sh', 'git, for the credential helper `!f() { … }` (plugins/initializer/git/credentials.ts)');
  }
  return { programs, unresolved };
}

function sourceFiles(root: string, folders: string[]): string[] {
  const files: string[] = [];
  const walk = (relative: string) => {
    for (const entry of readdirSync(path.join(root, relative), { withFileTypes: true })) {
      const child = `${relative}/${entry.name}`;
      if (entry.isDirectory()) {
        if (entry.name !== 'generated') walk(child);
      } else if (/\.ts$/.test(entry.name) && !/\.d\.ts$|\.test\.ts$/.test(entry.name)) files.push(child);
    }
  };
  for (const folder of folders) walk(folder);
  return files.sort();
}

/**
 * The Debian (bookworm) package that provides each program wsd runs or may run once the quota strategies of the
 * design land. A program missing here fails the Dockerfile test with a request to add it.
 */
export const debianPackageOf: Readonly<Record<string, string>> = {
  git: 'git',
  ssh: 'openssh-client',
  tar: 'tar',
  zstd: 'zstd',
  du: 'coreutils',
  flock: 'util-linux',
  cat: 'coreutils',
  sh: 'dash',
  tini: 'tini',
  mount: 'mount',
  umount: 'mount',
  losetup: 'mount',
  findmnt: 'util-linux',
  fallocate: 'util-linux',
  blkid: 'util-linux',
  'mkfs.ext4': 'e2fsprogs',
  resize2fs: 'e2fsprogs',
  e2fsck: 'e2fsprogs',
  'mkfs.xfs': 'xfsprogs',
  xfs_quota: 'xfsprogs',
  xfs_growfs: 'xfsprogs',
  xfs_io: 'xfsprogs',
  'mkfs.btrfs': 'btrfs-progs',
  btrfs: 'btrfs-progs',
  lvm: 'lvm2',
  lvcreate: 'lvm2',
  lvremove: 'lvm2',
  lvextend: 'lvm2',
  lvs: 'lvm2',
  vgs: 'lvm2',
};

/** Packages marked `Essential: yes` in Debian bookworm: present in every image, the slim ones included. */
export const essentialDebianPackages: ReadonlySet<string> = new Set(['coreutils', 'tar', 'dash', 'bash', 'util-linux', 'findutils', 'grep', 'sed', 'gzip', 'diffutils']);
