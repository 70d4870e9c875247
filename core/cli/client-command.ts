import { readFile } from 'node:fs/promises';
import type { ServiceError } from '@grpc/grpc-js';
import type { Command } from 'commander';
import type { WsdClient, WorkspaceInitializer } from '../api/client.js';
import { WsdError, isWsdError } from '../errors.js';
import { addClientOptions, clientOptions, parseQuota, type ClientOptions } from './client-options.js';
import { table } from './table.js';

/** `wsd client …`: drives a daemon over gRPC. Exit code: 0 ok, 1 a gRPC error (its name on stderr), 2 bad usage. */
export function registerClientCommand(program: Command): void {
  const client = addClientOptions(program.command('client').description('talk to a running daemon over gRPC'));
  const subcommand = (spec: string) => client.command(spec);

  // commander calls actions with (...positional, options, command).
  const action = (fn: (c: WsdClient, out: Output, ...args: any[]) => Promise<void>) =>
    async (...args: unknown[]) => {
      const command = args.at(-1) as Command;
      let c: WsdClient | undefined;
      let options: ClientOptions | undefined;
      try {
        options = await clientOptions(command);
        const out = new Output(options.json);
        // gRPC and the protos load here, not at start-up: every other wsd command stays fast.
        const { WsdClient } = await import('../api/client.js');
        c = new WsdClient({
          address: options.address,
          ...(options.tls ? { tls: options.tls } : {}),
          ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
        });
        await fn(c, out, ...args.slice(0, -1));
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
      action(async (c, out, id: string, opts: Record<string, unknown>) => {
        const initializer = await initializerFrom(opts);
        await c.initWorkspace({
          id,
          metadata: { owner: opts.owner as string, meta_id: opts.metaId as string },
          initializer,
          remote_storage_disabled: opts.remoteStorage === false,
          storage_quota_bytes: (opts.quota as number | undefined) ?? 0,
        });
        out.print({ id, state: 'ready' }, `workspace ${id} is ready`);
      }),
    );

  subcommand('wait <id>').description('wait until a workspace is initialized').action(
    action(async (c, out, id: string) => {
      await c.waitForInit(id);
      out.print({ id, state: 'ready' }, `workspace ${id} is ready`);
    }),
  );

  subcommand('exists <id>').description('whether a workspace exists (exit 0 either way)').action(
    action(async (c, out, id: string) => {
      const exists = await c.isWorkspaceExists(id);
      out.print({ id, exists }, exists ? `workspace ${id} exists` : `workspace ${id} does not exist`);
    }),
  );

  subcommand('snapshot <id>')
    .description('take a snapshot; prints its name')
    .option('--no-wait', 'return the name at once and finish in the background')
    .action(
      action(async (c, out, id: string, opts: { wait: boolean }) => {
        const name = await c.takeSnapshot(id, { returnImmediately: !opts.wait });
        out.print({ id, snapshot: name }, name);
      }),
    );

  subcommand('backup <id>').description('back a workspace up now; prints the backup key').action(
    action(async (c, out, id: string) => {
      const url = await c.backupWorkspace(id);
      out.print({ id, backup: url }, url);
    }),
  );

  subcommand('dispose <id>')
    .description('remove a workspace from the node, after a final backup with --backup')
    .option('--backup', 'take a final backup first (DATA_LOSS if it fails; the workspace is kept)')
    .action(
      action(async (c, out, id: string, opts: { backup?: boolean }) => {
        const gitStatus = await c.disposeWorkspace(id, { backup: opts.backup ?? false });
        out.print({ id, disposed: true, gitStatus }, `workspace ${id} disposed${gitStatus?.branch ? ` (branch ${gitStatus.branch})` : ''}`);
      }),
    );

  subcommand('list').description('list the workspaces on the node').action(
    action(async (c, out) => {
      const { workspaces } = await c.listWorkspaces();
      const rows = workspaces.map((w) => [w.id, w.state.replace('WORKSPACE_STATE_', '').toLowerCase(), w.owner, w.meta_id, w.created_at]);
      out.print(workspaces, rows.length ? table([['ID', 'STATE', 'OWNER', 'META ID', 'CREATED'], ...rows]) : 'no workspaces');
    }),
  );

  subcommand('describe <id>').description('everything known about one workspace').action(
    action(async (c, out, id: string) => {
      const d = await c.describeWorkspace(id);
      const lines = [
        ['id', d.summary?.id],
        ['state', d.summary?.state.replace('WORKSPACE_STATE_', '').toLowerCase()],
        ['owner', d.summary?.owner],
        ['meta id', d.summary?.meta_id],
        ['folder', d.folder],
        ['initializer', d.initializer],
        ['content source', d.content_source],
        ['quota', d.quota_limit_bytes ? `${d.quota_limit_bytes} bytes${d.quota_used_bytes !== undefined && d.quota_used_bytes !== null ? `, ${d.quota_used_bytes} used` : ''}` : 'unlimited'],
        ['last backup', d.last_backup ? `${d.last_backup.url} (${d.last_backup.size_bytes} bytes, ${d.last_backup.created_at})` : 'none'],
        ['last error', d.last_error || 'none'],
        ...d.snapshots.map((s) => ['snapshot', `${s.name} ${s.status}${s.error ? `: ${s.error}` : ''}`]),
      ];
      out.print(d, lines.map(([k, v]) => `${`${k}:`.padEnd(16)}${v ?? ''}`).join('\n'));
    }),
  );
  // The connection flags on every subcommand too (see addClientOptions), after its own: they work after it as well.
  for (const command of client.commands) addClientOptions(command);
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

class Output {
  constructor(readonly json: boolean) {}
  print(data: unknown, text: string): void {
    process.stdout.write(this.json ? `${JSON.stringify(data, null, 2)}\n` : `${text}\n`);
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
