import { readFile } from 'node:fs/promises';
import type { ServiceError } from '@grpc/grpc-js';
import type { Command } from 'commander';
import type { WsdClient, WorkspaceInitializer } from '../api/client.js';
import type { WorkspaceDetail__Output } from '../api/generated/wsd/v1/WorkspaceDetail.js';
import { WsdError, isWsdError } from '../errors.js';
import { addClientOptions, clientOptions, parseQuota, type ClientOptions } from './client-options.js';
import { confirm, riskChoices, riskWarning, workAtRisk } from './dispose-guard.js';
import { withProgress } from './progress-display.js';
import { table } from './table.js';

/**
 * `wsd client …`: drives a daemon over gRPC. Exit code: 0 ok, 1 a gRPC error (its name on stderr) or a dispose
 * refused to protect work, 2 bad usage.
 */
export function registerClientCommand(program: Command): void {
  const client = addClientOptions(program.command('client').description('talk to a running daemon over gRPC'));
  const subcommand = (spec: string) => client.command(spec);

  // commander calls actions with (...positional, options, command).
  const action = (fn: (run: ClientRun, ...args: any[]) => Promise<void>) =>
    async (...args: unknown[]) => {
      const command = args.at(-1) as Command;
      let c: WsdClient | undefined;
      let options: ClientOptions | undefined;
      try {
        options = await clientOptions(command);
        // gRPC and the protos load here, not at start-up: every other wsd command stays fast.
        const [{ WsdClient }, { toProtoJson }] = await Promise.all([import('../api/client.js'), import('../api/proto-json.js')]);
        c = new WsdClient({
          address: options.address,
          ...(options.tls ? { tls: options.tls } : {}),
          ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
        });
        const wsd = c;
        const run: ClientRun = {
          client: wsd,
          out: new Output(options.json),
          options,
          protoJson: toProtoJson,
          progress: (operation, id, call) =>
            options!.progress
              ? withProgress(call, { operation, stream: process.stderr, source: async () => (await wsd.getOperationProgress(id, { timeoutMs: 5000 })).operations })
              : call,
        };
        await fn(run, ...args.slice(0, -1));
      } catch (error) {
        await fail(error, options);
      } finally {
        c?.close();
      }
    };

  subcommand('init <id>')
    .description('create a workspace and wait until it is initialized')
    .requiredOption('--owner <owner>', 'metadata.owner')
    .requiredOption('--meta-id <metaId>', 'metadata.meta_id (the workspace id its backups are kept under)')
    .option('--empty', 'start empty')
    .option('--git <url>', 'clone a repository (default branch)')
    .option('--branch <branch>', 'with --git: clone this branch')
    .option('--snapshot <name>', 'restore a snapshot by the name TakeSnapshot returned')
    .option('--backup', 'restore the latest backup of --meta-id')
    .option('-f, --initializer <file>', 'initializer as JSON or YAML (the proto JSON mapping of WorkspaceInitializer)')
    .option('--quota <size>', 'storage_quota_bytes: bytes, or a size like 10GiB (default: none)', parseQuota)
    .option('--no-remote-storage', 'remote_storage_disabled: no backups or snapshots for this workspace')
    .action(
      action(async ({ client: c, out, progress, protoJson }, id: string, opts: Record<string, unknown>) => {
        const initializer = await initializerFrom(opts);
        // Through the admin service: the same InitWorkspace, answered with what did not go as asked.
        const result = await progress(
          'init',
          id,
          c.initWorkspaceWithResult({
            id,
            metadata: { owner: opts.owner as string, meta_id: opts.metaId as string },
            initializer,
            remote_storage_disabled: opts.remoteStorage === false,
            storage_quota_bytes: (opts.quota as number | undefined) ?? 0,
          }),
        );
        if (!out.json) for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
        out.print({ id, state: 'ready', ...protoJson('wsd.v1.InitWorkspaceResult', result) }, `workspace ${id} is ready`);
      }),
    );

  subcommand('wait <id>').description('wait until a workspace is initialized').action(
    action(async ({ client: c, out }, id: string) => {
      await c.waitForInit(id);
      out.print({ id, state: 'ready' }, `workspace ${id} is ready`);
    }),
  );

  subcommand('exists <id>').description('whether a workspace exists (exit 0 either way)').action(
    action(async ({ client: c, out }, id: string) => {
      const exists = await c.isWorkspaceExists(id);
      out.print({ id, exists }, exists ? `workspace ${id} exists` : `workspace ${id} does not exist`);
    }),
  );

  subcommand('snapshot <id>')
    .description('take a snapshot; prints its name')
    .option('--no-wait', 'return the name at once and finish in the background')
    .action(
      action(async ({ client: c, out, progress }, id: string, opts: { wait: boolean }) => {
        const call = c.takeSnapshot(id, { returnImmediately: !opts.wait });
        const name = opts.wait ? await progress('snapshot', id, call) : await call;
        out.print({ id, snapshot: name }, name);
      }),
    );

  subcommand('backup <id>').description('back a workspace up now; prints the backup key').action(
    action(async ({ client: c, out, progress }, id: string) => {
      const url = await progress('backup', id, c.backupWorkspace(id));
      out.print({ id, backup: url }, url);
    }),
  );

  subcommand('export [meta-id]')
    .description('write a backup (the current one unless --backup) or a snapshot as a plain .tar.zst that `tar --zstd -xf` extracts')
    .option('--owner <owner>', 'metadata.owner of the workspace (with <meta-id>)')
    .option('--backup <key>', 'a backup key as `wsd client backup` prints it or ListBackups lists it (default: the current backup)')
    .option('--snapshot <name>', 'a snapshot name as `wsd client snapshot` prints it, instead of a backup (<meta-id> and --owner optional)')
    .option('-o, --output <file>', 'write to <file>, under a temporary name renamed once complete; - or none: stdout (never a terminal)')
    .addHelpText('after', '\nExamples:\n  wsd client export my-ws --owner dave -o my-ws.tar.zst\n  wsd client export my-ws --owner dave | tar --zstd -xf - -C restored/\n')
    .action(
      action(async ({ client: c, out }, metaId: string | undefined, opts: { owner?: string; backup?: string; snapshot?: string; output?: string }) => {
        if (opts.backup !== undefined && opts.snapshot !== undefined) throw new WsdError('INVALID_ARGUMENT', 'give --backup or --snapshot, not both');
        if (opts.snapshot === undefined && (!metaId || !opts.owner)) throw new WsdError('INVALID_ARGUMENT', 'give <meta-id> and --owner (or --snapshot <name>)');
        const { exportDestination, receiveExport } = await import('./export-output.js');
        const file = exportDestination(opts.output);
        const received = await receiveExport(
          c.exportBackup({ owner: opts.owner ?? '', meta_id: metaId ?? '', backup: opts.backup ?? '', snapshot: opts.snapshot ?? '' }),
          file,
        );
        const key = received.archive?.url ?? '';
        const summary = `exported ${key} (${received.bytes} bytes)${file ? ` to ${file}` : ''}`;
        // stdout carries the archive when no file was given: the summary goes to stderr then, and only for a person.
        if (file) out.print({ archive: key, file, bytes: received.bytes }, summary);
        else if (!out.json) process.stderr.write(`${summary}\n`);
      }),
    );

  subcommand('dispose <id>')
    .description('remove a workspace from the node, after a final backup with --backup')
    .option('--backup', 'take a final backup first (DATA_LOSS if it fails; the workspace is kept)')
    .option('--force', 'dispose even when uncommitted, untracked or unpushed work would be lost')
    .action(
      action(async ({ client: c, out, progress, protoJson }, id: string, opts: { backup?: boolean; force?: boolean }) => {
        const backup = opts.backup ?? false;
        if (!opts.force) await guardWork(c, id, backup);
        const gitStatus = await progress('dispose', id, c.disposeWorkspace(id, { backup }));
        out.print(
          { id, disposed: true, ...(gitStatus ? { gitStatus: protoJson('contentservice.GitStatus', gitStatus) } : {}) },
          `workspace ${id} disposed${gitStatus?.branch ? ` (branch ${gitStatus.branch})` : ''}`,
        );
      }),
    );

  subcommand('list').description('list the workspaces on the node').action(
    action(async ({ client: c, out, protoJson }) => {
      const response = await c.listWorkspaces();
      const rows = response.workspaces.map((w) => [w.id, stateName(w.state), w.owner, w.meta_id, w.created_at]);
      out.print(protoJson('wsd.v1.ListWorkspacesResponse', response), rows.length ? table([['ID', 'STATE', 'OWNER', 'META ID', 'CREATED'], ...rows]) : 'no workspaces');
    }),
  );

  subcommand('describe <id>').description('everything known about one workspace, its git status included').action(
    action(async ({ client: c, out, protoJson }, id: string) => {
      const d = await c.describeWorkspace(id);
      out.print(protoJson('wsd.v1.WorkspaceDetail', d), describeText(d));
    }),
  );

  // The connection flags on every subcommand too (see addClientOptions), after its own: they work after it as well.
  for (const command of client.commands) addClientOptions(command);
}

/** What an action gets: the client, the output, the merged options and the progress display for long calls. */
interface ClientRun {
  client: WsdClient;
  out: Output;
  options: ClientOptions;
  protoJson: (typeName: string, value: unknown) => Record<string, unknown>;
  /** `call` with progress on stderr (unless --no-progress): `operation` as GetOperationProgress names it. */
  progress: <T>(operation: 'init' | 'backup' | 'snapshot' | 'dispose', id: string, call: Promise<T>) => Promise<T>;
}

/**
 * Refuses to throw away uncommitted or unpushed work without being told to: on a terminal it asks, elsewhere (a
 * script, CI) it refuses, naming what would be lost and the flags that decide (--backup keeps it, --force loses it).
 */
async function guardWork(c: WsdClient, id: string, backup: boolean): Promise<void> {
  let detail: WorkspaceDetail__Output;
  try {
    detail = await c.describeWorkspace(id);
  } catch {
    return; // unknown or unreadable: DisposeWorkspace itself answers (NOT_FOUND, …)
  }
  const risk = workAtRisk(detail, backup);
  if (risk.length === 0) return;
  const warning = riskWarning(id, detail, risk);
  if (process.stdin.isTTY) {
    process.stderr.write(`${warning}\n${detail.remote_storage_disabled ? '' : '(--backup keeps it in a final backup)\n'}`);
    if (await confirm('Dispose it anyway and lose this work? [y/N] ')) return;
    process.stderr.write(`wsd client: workspace ${id} not disposed\n`);
  } else {
    process.stderr.write(`wsd client: ${warning}. Not disposed: ${riskChoices(detail)}.\n`);
  }
  process.exit(1);
}

function stateName(state: string | undefined): string {
  return (state ?? '').replace('WORKSPACE_STATE_', '').toLowerCase();
}

/** describe for a person: one `key: value` line per fact, the git status of the first checkout included. */
function describeText(d: WorkspaceDetail__Output): string {
  const quota = d.quota_limit_bytes
    ? `${d.quota_limit_bytes} bytes${d.quota_used_bytes !== undefined && d.quota_used_bytes !== null ? `, ${d.quota_used_bytes} used` : ''}`
    : 'unlimited';
  const lines: Array<[string, unknown]> = [
    ['id', d.summary?.id],
    ['state', stateName(d.summary?.state)],
    ['owner', d.summary?.owner],
    ['meta id', d.summary?.meta_id],
    ['folder', d.folder],
    ['initializer', d.initializer],
    ['content source', d.content_source],
    ...(d.restored_from ? [['restored from', d.restored_from] as [string, unknown]] : []),
    ...d.warnings.map((w) => ['warning', w] as [string, unknown]),
    ['quota', quota],
    ['last backup', d.last_backup ? `${d.last_backup.url} (${d.last_backup.size_bytes} bytes, ${d.last_backup.created_at})` : 'none'],
    ['last error', d.last_error || 'none'],
    ...d.snapshots.map((s) => ['snapshot', `${s.name} ${s.status}${s.error ? `: ${s.error}` : ''}`] as [string, unknown]),
    // Read live, and only of a ready workspace (an initializing or failed one has no status to report).
    ...(d.summary?.state === 'WORKSPACE_STATE_READY' ? gitLines(d.git_status) : []),
  ];
  return lines.map(([k, v]) => `${`${k}:`.padEnd(16)}${v ?? ''}`).join('\n');
}

function gitLines(git: WorkspaceDetail__Output['git_status']): Array<[string, unknown]> {
  if (!git || (!git.branch && !git.latest_commit)) return [['git', 'not a git repository (or no status available)']];
  const list = (count: number, names: string[]) => (count === 0 ? 'none' : `${count}: ${names.join(', ')}${count > names.length ? ', …' : ''}`);
  return [
    ['git branch', git.branch || '(detached)'],
    ['git commit', git.latest_commit],
    ['uncommitted', list(git.total_uncommited_files, git.uncommited_files)],
    ['untracked', list(git.total_untracked_files, git.untracked_files)],
    ['unpushed', list(git.total_unpushed_commits, git.unpushed_commits)],
  ];
}

async function initializerFrom(opts: Record<string, unknown>): Promise<WorkspaceInitializer> {
  const chosen = ['empty', 'git', 'snapshot', 'backup', 'initializer'].filter((k) => opts[k] !== undefined && opts[k] !== false);
  if (chosen.length !== 1) {
    throw new WsdError('INVALID_ARGUMENT', `give exactly one of --empty, --git, --snapshot, --backup, --initializer (got ${chosen.length ? chosen.map((c) => `--${c}`).join(', ') : 'none'})`);
  }
  if (opts.empty) return { empty: {} };
  if (opts.git) return { git: { remote_uri: opts.git as string, ...(opts.branch ? { target_mode: 'REMOTE_BRANCH', clone_taget: opts.branch as string } : {}), checkout_location: '' } };
  if (opts.snapshot) return { snapshot: { snapshot: opts.snapshot as string } };
  if (opts.backup) return { backup: {} };
  const file = opts.initializer as string;
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new WsdError('INVALID_ARGUMENT', `--initializer ${file}: ${error.code === 'ENOENT' ? 'file not found' : error.message}`);
  });
  const [{ parse: parseYaml }, { fromProtoJson }] = await Promise.all([import('yaml'), import('../api/proto-json.js')]);
  let parsed: unknown;
  try {
    parsed = parseYaml(text); // YAML is a superset of JSON
  } catch (error) {
    throw new WsdError('INVALID_ARGUMENT', `--initializer ${file}: ${(error as Error).message}`);
  }
  return fromProtoJson('contentservice.WorkspaceInitializer', parsed) as WorkspaceInitializer;
}

/** The answer on stdout: `text` for a person, or `json` (camelCase keys, messages in the proto JSON mapping). */
class Output {
  constructor(readonly json: boolean) {}
  print(json: unknown, text: string): void {
    process.stdout.write(this.json ? `${JSON.stringify(json, null, 2)}\n` : `${text}\n`);
  }
}

async function fail(error: unknown, options: ClientOptions | undefined): Promise<never> {
  if (isWsdError(error)) {
    process.stderr.write(`wsd client: ${error.message}\n`);
    process.exit(2);
  }
  const e = error as ServiceError;
  if (typeof e?.code === 'number') {
    const [{ errorField }, { statusName }, { explainConnectionFailure }] = await Promise.all([
      import('../api/client.js'),
      import('../api/grpc-status.js'),
      import('./connection-errors.js'),
    ]);
    const name = statusName(e.code);
    const field = errorField(e);
    const explained = options ? await explainConnectionFailure(name, e.details ?? '', options) : undefined;
    process.stderr.write(`${name}: ${explained ?? e.details}${field ? ` (field ${field})` : ''}\n`);
    process.exit(1);
  }
  throw error;
}
