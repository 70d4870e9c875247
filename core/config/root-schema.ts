import { z } from 'zod';
import { parseDurationMs } from './units.js';
import { sizeSchema } from './size-schema.js';

/** `host:port` or `[v6]:port`; port 0 picks a free port (the bound one is logged). */
export const addressSchema = z.string().check((ctx) => {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(ctx.value);
  if (!match) ctx.issues.push({ code: 'custom', input: ctx.value, message: 'must be host:port, e.g. 127.0.0.1:9500' });
  else if (Number(match[2]) > 65535) ctx.issues.push({ code: 'custom', input: ctx.value, message: 'port must be at most 65535' });
});

/** 127.0.0.0/8, ::1 and localhost: reachable from this node only. */
export function isLoopback(address: string): boolean {
  const host = address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** A duration: seconds as a number, or a string like `90s`, `15m`, `1h30m`, `500ms`. Parsed to milliseconds. */
export const durationSchema = z.union([z.number().nonnegative(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return value * 1000;
  const ms = parseDurationMs(value);
  if (ms === undefined) {
    ctx.issues.push({ code: 'custom', input: value, message: 'must be a duration like 30s, 15m, 1h30m (or a number of seconds)' });
    return z.NEVER;
  }
  return ms;
});

/** A plugin id as config names it. */
const pluginIdSchema = z.string().regex(/^[a-z][a-z0-9-]*$/, 'must be a kebab-case plugin id');

/** `{ <id>: <that plugin's config> }` for multi-slot kinds; the keys are the enabled plugins. */
const pluginMapSchema = z.record(pluginIdSchema, z.unknown());

/**
 * The root of `wsd.yaml`. Plugin sections are validated separately, each against its own plugin's schema, once the
 * plugin set (built-ins + `plugins` modules) is known.
 */
export const rootConfigSchema = z.strictObject({
  dataDir: z
    .string()
    .min(1)
    .default('./wsd-data')
    .describe('Folder for wsd state (working area, local storage). Relative paths are relative to the config file.'),
  workingArea: z
    .string()
    .min(1)
    .optional()
    .describe('Folder that holds the workspace folders and their state files. Default: <dataDir>/workspaces.'),
  log: z
    .strictObject({
      level: z.enum(['debug', 'info', 'warn', 'error']).default('info').describe('Lowest level that is logged.'),
    })
    .prefault({}),
  http: z
    .strictObject({
      address: addressSchema.default('127.0.0.1:9500').describe('Where /healthz, /readyz and /metrics are served.'),
      statusPage: z
        .boolean()
        .default(true)
        .describe('Serve the read-only status page for operators (/ and /status.json): plugins, disk, workspaces with their owners, recent error texts; served at http.address too. Turn it off where people who must not see those can reach that address.'),
    })
    .prefault({})
    .describe('The HTTP endpoint for probes, Prometheus and the status page.'),
  api: z
    .strictObject({
      address: addressSchema.default('127.0.0.1:8080').describe('Where the gRPC API (WorkspaceContentService, wsd.v1.AdminService) listens.'),
      insecure: z
        .boolean()
        .default(false)
        .describe('Serve plaintext gRPC on a non-loopback address (a trusted network only). Loopback addresses may always serve plaintext.'),
      tls: z
        .strictObject({
          certFile: z.string().min(1).describe('PEM server certificate (chain).'),
          keyFile: z.string().min(1).describe('PEM private key of the certificate.'),
          caFile: z.string().min(1).optional().describe('PEM CA bundle that client certificates must chain to (mutual TLS).'),
          requireClientCert: z.boolean().default(true).describe('With caFile: refuse clients without a valid certificate.'),
        })
        .optional()
        .describe('TLS for the gRPC API; with caFile, mutual TLS.'),
    })
    .prefault({})
    .check((ctx) => {
      if (!ctx.value.tls && !ctx.value.insecure && !isLoopback(ctx.value.address)) {
        ctx.issues.push({
          code: 'custom',
          input: ctx.value,
          path: ['tls'],
          message: `${ctx.value.address} is not a loopback address: set tls (certFile, keyFile[, caFile]) or insecure: true to serve plaintext`,
        });
      }
      if (ctx.value.tls && ctx.value.insecure) {
        ctx.issues.push({ code: 'custom', input: ctx.value, path: ['insecure'], message: 'insecure: true and tls exclude each other' });
      }
    })
    .describe('The gRPC API.'),
  workspaces: z
    .strictObject({
      uid: z.number().int().nonnegative().optional().describe('Owner of restored and initialized content when wsd runs as root. Default: the uid stored in the archive.'),
      gid: z.number().int().nonnegative().optional().describe('Group of restored and initialized content when wsd runs as root (with uid).'),
      readyMarker: z
        .string()
        .default('.gitpod/ready')
        .describe('File (relative to the workspace folder) written when content is ready and left out of every archive; empty to disable.'),
      backupWins: z.boolean().default(true).describe('When a backup of the workspace exists, InitWorkspace restores it instead of running the given initializer.'),
      allowSpecialFiles: z.boolean().default(false).describe('Let restores create device nodes and fifos (refused by default).'),
      minFree: sizeSchema
        .prefault(0)
        .describe('The disk guard: while the working area\'s file system has less free space than this, InitWorkspace is refused (RESOURCE_EXHAUSTED) and the disk-space health check fails; accepted again once space is freed. 0 turns the guard off.'),
      preserveSetuid: z.boolean().default(false).describe('Keep setuid/setgid bits of restored files (cleared by default: a restore as root must not create setuid-root programs). Folders keep setgid.'),
    })
    .prefault({})
    .check((ctx) => {
      if (ctx.value.gid !== undefined && ctx.value.uid === undefined) {
        ctx.issues.push({ code: 'custom', input: ctx.value, path: ['uid'], message: 'gid needs uid as well' });
      }
    })
    .describe('How workspace content is created and restored.'),
  backup: z
    .strictObject({
      period: durationSchema.prefault('15m').describe('How often every ready workspace is backed up (skipped when unchanged); 0 disables periodic backups.'),
      jitter: z.number().min(0).max(1).default(0.2).describe('Each period is shortened or lengthened by up to this fraction, so workspaces do not back up in lockstep.'),
      maxConcurrent: z.number().int().positive().default(2).describe('Backups and snapshots uploading at once on this node.'),
      keep: z.number().int().positive().default(3).describe('Backups kept per workspace; older ones are deleted after a newer one is committed.'),
      retries: z.number().int().nonnegative().default(4).describe('Retries of a failed periodic backup, with exponential backoff from retryDelay.'),
      retryDelay: durationSchema.prefault('5s').describe('First retry delay of a failed periodic backup; doubles each retry.'),
      compressionLevel: z.number().int().min(1).max(19).default(1).describe('zstd level of archives (1 is fastest; higher saves storage, costs CPU).'),
      format: z
        .enum(['chunks', 'tar'])
        .default('chunks')
        .describe('How new backups and snapshots are stored: chunks (only what changed, deduplicated across an owner\'s workspaces; ADR 0007) or tar (a whole tar.zst archive each time). Both formats restore either way.'),
      hmacKey: z
        .string()
        .min(32, 'must be at least 32 characters (e.g. `openssl rand -hex 32`)')
        .optional()
        .describe('Secret that authenticates manifests (HMAC-SHA256); a manifest without a valid hmac is refused, so objects planted in storage restore nothing. Use { fromFile: ... } or { fromEnv: ... }. Recommended.'),
      acceptUnsignedManifests: z
        .boolean()
        .default(false)
        .describe('With hmacKey: still restore manifests written before the key was set (logged). Turn off once old backups have aged out.'),
    })
    .prefault({})
    .describe('Backups and snapshots.'),
  plugins: z
    .array(z.string().min(1))
    .default([])
    .describe('Third-party plugin modules to load: file paths (relative to the config file) or package names.'),
  storage: z
    .looseObject({ plugin: pluginIdSchema.default('local').describe('The storage backend to use.') })
    .prefault({})
    .describe('Where backups and snapshots go. Other keys: one config section per storage plugin id.'),
  quota: z
    .looseObject({ plugin: pluginIdSchema.default('none').describe('The quota strategy to use.') })
    .prefault({})
    .describe('How workspace disk use is limited. Other keys: one config section per quota plugin id.'),
  initializers: pluginMapSchema
    .default({ empty: {}, backup: {}, snapshot: {}, composite: {}, git: {}, prebuild: {}, download: {} })
    .describe('Enabled content initializers: plugin id → its config.'),
  health: pluginMapSchema
    .default({ 'working-area': {} })
    .describe('Enabled health checks: plugin id → its config.'),
});

export type RootConfig = z.output<typeof rootConfigSchema>;
