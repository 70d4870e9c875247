import { WsdError } from '../errors.js';
import type { CompositeSpec, DownloadSpec, FromBackupSpec, GitSpec, InitializerRef, PrebuildSpec, SnapshotSpec } from '../initializer/specs.js';

/**
 * The wire `WorkspaceInitializer` (as @grpc/proto-loader delivers it: the virtual `spec` oneof names the member set)
 * → the domain `InitializerRef` plugins receive. Field by field, with types checked: nothing the loader adds (the
 * `spec` oneof, defaults for absent fields) reaches a plugin, and a loader option change fails here, loudly.
 */
export function toInitializerRef(wire: unknown, field = 'initializer', budget = { nodes: maxInitializers, depth: 0 }): InitializerRef {
  // Composites nest: bounded in depth and in initializers overall, or a request could cost any amount of work.
  if (--budget.nodes < 0) throw new WsdError('INVALID_ARGUMENT', `${field}: a request may hold at most ${maxInitializers} initializers`, { field });
  if (budget.depth > maxDepth) throw new WsdError('INVALID_ARGUMENT', `${field}: composites may nest at most ${maxDepth} deep`, { field });
  const message = object(wire, field);
  const kind = message.spec;
  if (typeof kind !== 'string' || kind === '') {
    throw new WsdError('INVALID_ARGUMENT', `${field} is required (one of empty, git, snapshot, prebuild, composite, download, backup)`, { field });
  }
  const member = message[kind] ?? {};
  const at = `${field}.${kind}`;
  if (!Object.hasOwn(mappers, kind)) throw new WsdError('INVALID_ARGUMENT', `${field}: unknown initializer ${JSON.stringify(kind)}`, { field });
  const spec =
    kind === 'composite'
      ? toCompositeSpec(member, at, { nodes: budget.nodes, depth: budget.depth + 1 }, budget)
      : mappers[kind]!(member, at);
  return { kind, spec };
}

const maxInitializers = 100;
const maxDepth = 8;
/** Longest string any spec field may hold (URLs, paths, refs, config values); the plugins bound them further. */
const maxTextLength = 8192;

const mappers: Record<string, (value: unknown, at: string) => unknown> = {
  empty: () => ({}),
  git: toGitSpec,
  snapshot: toSnapshotSpec,
  prebuild: toPrebuildSpec,
  composite: () => undefined, // mapped in toInitializerRef: it carries the budget
  download: toDownloadSpec,
  backup: toFromBackupSpec,
};

function toGitSpec(value: unknown, at: string): GitSpec {
  const git = object(value, at);
  const config = git.config === null || git.config === undefined ? undefined : object(git.config, `${at}.config`);
  const spec: GitSpec = {};
  set(spec, 'remote_uri', text(git.remote_uri, `${at}.remote_uri`));
  set(spec, 'upstream_Remote_uri', text(git.upstream_Remote_uri, `${at}.upstream_Remote_uri`));
  set(spec, 'target_mode', oneOf(git.target_mode, ['REMOTE_HEAD', 'REMOTE_COMMIT', 'REMOTE_BRANCH', 'LOCAL_BRANCH'] as const, `${at}.target_mode`));
  set(spec, 'clone_taget', text(git.clone_taget, `${at}.clone_taget`));
  set(spec, 'checkout_location', text(git.checkout_location, `${at}.checkout_location`));
  set(spec, 'full_clone', flag(git.full_clone, `${at}.full_clone`));
  if (config) {
    const custom = config.custom_config === undefined || config.custom_config === null ? undefined : object(config.custom_config, `${at}.config.custom_config`);
    const out: NonNullable<GitSpec['config']> = {};
    if (custom && Object.keys(custom).length > 64) {
      throw new WsdError('INVALID_ARGUMENT', `${at}.config.custom_config may have at most 64 entries`, { field: `${at}.config.custom_config` });
    }
    if (custom && Object.keys(custom).length > 0) {
      out.custom_config = Object.fromEntries(Object.entries(custom).map(([k, v]) => [k, text(v, `${at}.config.custom_config[${JSON.stringify(k)}]`) ?? '']));
    }
    set(out, 'authentication', oneOf(config.authentication, ['NO_AUTH', 'BASIC_AUTH', 'BASIC_AUTH_OTS'] as const, `${at}.config.authentication`));
    set(out, 'auth_user', text(config.auth_user, `${at}.config.auth_user`));
    set(out, 'auth_password', text(config.auth_password, `${at}.config.auth_password`));
    set(out, 'auth_ots', text(config.auth_ots, `${at}.config.auth_ots`));
    if (Object.keys(out).length > 0) spec.config = out;
  }
  return spec;
}

function toSnapshotSpec(value: unknown, at: string): SnapshotSpec {
  const snapshot = object(value, at);
  const spec: SnapshotSpec = {};
  set(spec, 'snapshot', text(snapshot.snapshot, `${at}.snapshot`));
  set(spec, 'from_volume_snapshot', flag(snapshot.from_volume_snapshot, `${at}.from_volume_snapshot`));
  return spec;
}

function toPrebuildSpec(value: unknown, at: string): PrebuildSpec {
  const prebuild = object(value, at);
  const spec: PrebuildSpec = {};
  if (prebuild.prebuild !== null && prebuild.prebuild !== undefined) spec.prebuild = toSnapshotSpec(prebuild.prebuild, `${at}.prebuild`);
  const gits = list(prebuild.git, `${at}.git`);
  if (gits.length > 0) spec.git = gits.map((git, i) => toGitSpec(git, `${at}.git[${i}]`));
  return spec;
}

function toCompositeSpec(value: unknown, at: string, child: { nodes: number; depth: number }, parent: { nodes: number }): CompositeSpec {
  const composite = object(value, at);
  const initializer = list(composite.initializer, `${at}.initializer`).map((c, i) => toInitializerRef(c, `${at}.initializer[${i}]`, child));
  parent.nodes = child.nodes;
  return { initializer };
}

function toDownloadSpec(value: unknown, at: string): DownloadSpec {
  const download = object(value, at);
  const spec: DownloadSpec = {
    files: list(download.files, `${at}.files`).map((file, i) => {
      const f = object(file, `${at}.files[${i}]`);
      const out: NonNullable<DownloadSpec['files']>[number] = {};
      set(out, 'url', text(f.url, `${at}.files[${i}].url`));
      set(out, 'file_path', text(f.file_path, `${at}.files[${i}].file_path`));
      set(out, 'digest', text(f.digest, `${at}.files[${i}].digest`));
      return out;
    }),
  };
  set(spec, 'target_location', text(download.target_location, `${at}.target_location`));
  return spec;
}

function toFromBackupSpec(value: unknown, at: string): FromBackupSpec {
  const backup = object(value, at);
  const spec: FromBackupSpec = {};
  set(spec, 'checkout_location', text(backup.checkout_location, `${at}.checkout_location`));
  set(spec, 'from_volume_snapshot', flag(backup.from_volume_snapshot, `${at}.from_volume_snapshot`));
  return spec;
}

const maxListLength = 100;

function object(value: unknown, field: string): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new WsdError('INVALID_ARGUMENT', `${field} must be a message`, { field });
  return value as Record<string, unknown>;
}

/** Absent or empty → undefined (proto3 cannot tell them apart). */
function text(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new WsdError('INVALID_ARGUMENT', `${field} must be a string`, { field });
  if (value.length > maxTextLength) throw new WsdError('INVALID_ARGUMENT', `${field} must be at most ${maxTextLength} characters`, { field });
  return value;
}

function flag(value: unknown, field: string): boolean | undefined {
  if (value === undefined || value === null || value === false) return undefined;
  if (value !== true) throw new WsdError('INVALID_ARGUMENT', `${field} must be a boolean`, { field });
  return true;
}

function oneOf<T extends string>(value: unknown, names: readonly T[], field: string): T | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < names.length) return names[value];
  if (typeof value === 'string' && (names as readonly string[]).includes(value)) return value as T;
  throw new WsdError('INVALID_ARGUMENT', `${field} must be one of ${names.join(', ')}`, { field });
}

function list(value: unknown, field: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new WsdError('INVALID_ARGUMENT', `${field} must be a list`, { field });
  if (value.length > maxListLength) throw new WsdError('INVALID_ARGUMENT', `${field} may have at most ${maxListLength} entries`, { field });
  return value;
}

function set<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) target[key] = value;
}
